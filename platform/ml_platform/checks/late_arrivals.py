"""The `late_arrivals` check: how much of a day arrived after it, and how much too late to keep."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from ml_platform.checks.verdicts import ERROR, PASS, WARN, verdict
from ml_platform.contracts.quality_rules import LateArrivalRule
from ml_platform.results import Verdict
from ml_platform.warehouse import sql
from ml_platform.warehouse.sql import DateWindow

LATE_ARRIVALS_CHECK = "late_arrivals"


@dataclass(frozen=True)
class Arrivals:
    """One day's figures: its valid rows (before dedup), of which landed on a later day, and rows
    that landed on this day too late for their own event day (quarantined)."""

    rows: int
    late: int
    beyond_tolerance: int


def beyond_tolerance_counts(
    con: duckdb.DuckDBPyConnection, quarantine_table: str, rule: str, window: DateWindow
) -> dict[str, int]:
    """Rows quarantined under `rule` (too late) per partition day of the window."""
    rows = con.execute(
        f"""SELECT strftime(partition_date, '%Y-%m-%d'), count(*) FROM {sql.ident(quarantine_table)}
            WHERE rule = {sql.literal(rule)} AND {sql.in_window("partition_date", window)} GROUP BY 1"""
    ).fetchall()
    return dict(rows)


def judge_late_arrivals(rule: LateArrivalRule, day: dt.date, arrivals: Arrivals, tolerance_days: int) -> Verdict:
    rate = arrivals.late / arrivals.rows if arrivals.rows else 0.0
    metadata = {
        "rows": arrivals.rows,
        "late_rows": arrivals.late,
        "late_rate": round(rate, 6),
        "beyond_tolerance_rows": arrivals.beyond_tolerance,
        "tolerance_days": tolerance_days,
    }
    problems, level = [], PASS
    if rate >= rule.warn_rate:
        level = ERROR if rate >= rule.error_rate else WARN
        limit = rule.error_rate if level == ERROR else rule.warn_rate
        problems.append(f"{arrivals.late} of {arrivals.rows} rows ({rate:.1%}) landed after the day, limit {limit:.0%}")
    if arrivals.beyond_tolerance > rule.max_beyond_tolerance:
        level = max(level, WARN)
        problems.append(
            f"{arrivals.beyond_tolerance} rows landed this day more than {tolerance_days} days after their event"
            " day (quarantined)"
        )
    return verdict(level, metadata, f"{day}: " + "; ".join(problems) if problems else None)
