"""The quality checks of a partitioned clean table: their specs, the profiles its write records,
and the verdicts its run publishes (for the run and for each partition, like the contract check).

Not blocking: a surprising volume or null rate is worth hearing about (WARN or ERROR in the UI),
but the rows are valid by contract, so downstream tables still build.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb

from ml_platform.dagster_previews import acknowledged
from ml_platform.partitions import window_keys
from ml_platform.quality.completeness import COMPLETENESS_CHECK, judge_completeness
from ml_platform.quality.late_arrivals import LATE_ARRIVALS_CHECK, Arrivals, judge_late_arrivals
from ml_platform.quality.profiles import read_profiles, record_profiles
from ml_platform.quality.rules import QualityRules
from ml_platform.quality.verdicts import worst
from ml_platform.quality.volume import VOLUME_CHECK, judge_volume
from ml_platform.results import CheckOutcome
from ml_platform.warehouse.sql import DateWindow


def quality_check_specs(asset_key: dg.AssetKey, rules: QualityRules, partitions_def) -> list[dg.AssetCheckSpec]:
    """One spec per enabled check, partitioned like the asset, described by its rule."""
    enabled = {
        VOLUME_CHECK: rules.volume,
        COMPLETENESS_CHECK: rules.completeness,
        LATE_ARRIVALS_CHECK: rules.late_arrivals,
    }
    with acknowledged("partitions_def on an AssetCheckSpec"):
        return [
            dg.AssetCheckSpec(name=name, asset=asset_key, partitions_def=partitions_def, description=rule.describe())
            for name, rule in enabled.items()
            if rule is not None
        ]


def record_quality_profiles(
    con: duckdb.DuckDBPyConnection, rules: QualityRules, table: str, day_column: str, columns: list[str], window
) -> None:
    """Inside the write's transaction: the written days' profiles, the checks' history."""
    if rules.reads_history:
        record_profiles(con, table, day_column, columns, window)


def evaluate_quality(
    con: duckdb.DuckDBPyConnection,
    rules: QualityRules,
    table: str,
    columns: list[str],
    window: DateWindow,
    arrivals: dict[str, Arrivals],
    tolerance_days: int,
    today: dt.date | None = None,
) -> list[CheckOutcome]:
    """The quality checks' outcomes for the days of `window`, from the stored profiles and each
    day's `arrivals` (days missing there had no rows)."""
    today = today or dt.datetime.now(dt.UTC).date()
    profiles = {}
    if rules.reads_history:
        profiles = read_profiles(con, table, (window[0] - dt.timedelta(days=rules.history_days), window[1]))
    no_rows = Arrivals(0, 0, 0)
    # Each enabled check: its judge of one day, and the figure its run-level verdict sums up.
    judges = {
        VOLUME_CHECK: (rules.volume, lambda day: judge_volume(rules.volume, day, profiles, today), "rows"),
        COMPLETENESS_CHECK: (
            rules.completeness,
            lambda day: judge_completeness(rules.completeness, day, profiles, columns),
            None,
        ),
        LATE_ARRIVALS_CHECK: (
            rules.late_arrivals,
            lambda day: judge_late_arrivals(
                rules.late_arrivals, day, arrivals.get(day.isoformat(), no_rows), tolerance_days
            ),
            "late_rows",
        ),
    }
    outcomes = []
    for name, (rule, judge, total) in judges.items():
        if rule is None:
            continue
        by_day = {key: judge(dt.date.fromisoformat(key)) for key in window_keys(window)}
        summary = {"partitions": len(by_day)}
        if total:
            summary[total] = sum(v.metadata[total] for v in by_day.values())
        outcomes.append(CheckOutcome(name, worst(by_day, summary, name), by_day))
    return outcomes
