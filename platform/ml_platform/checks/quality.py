"""The quality checks of a partitioned clean table: their specs, the profiles its write records,
and the verdicts its run publishes (for the run and for each partition, like the contract check).

Not blocking: a surprising volume or null rate is worth hearing about (WARN or ERROR in the UI),
but the rows are valid by contract, so downstream tables still build.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import dagster as dg
import duckdb

from ml_platform.checks.completeness import COMPLETENESS_CHECK, judge_completeness
from ml_platform.checks.late_arrivals import LATE_ARRIVALS_CHECK, Arrivals, judge_late_arrivals
from ml_platform.checks.profiles import read_profiles, record_profiles
from ml_platform.checks.references import REFERENCES_CHECK, judge_references
from ml_platform.checks.uniqueness import UNIQUENESS_CHECK, judge_history_uniqueness, judge_uniqueness
from ml_platform.checks.verdicts import worst
from ml_platform.checks.volume import VOLUME_CHECK, judge_volume
from ml_platform.contracts.quality_rules import QualityRules
from ml_platform.dagster_previews import acknowledged
from ml_platform.partitions import window_keys
from ml_platform.results import CheckOutcome
from ml_platform.warehouse.sql import DateWindow


@dataclass(frozen=True)
class CheckedTable:
    """The clean table the checks look at: its name, day column (None: a snapshot history), key
    and the columns read from the source."""

    name: str
    day_column: str | None
    key_columns: tuple[str, ...]
    columns: list[str]
    # Personal columns (contracts.personal): check samples never show their values.
    personal: frozenset[str] = frozenset()


def quality_check_specs(
    asset_key: dg.AssetKey, rules: QualityRules, partitions_def, key_columns: tuple[str, ...]
) -> list[dg.AssetCheckSpec]:
    """One spec per enabled check, partitioned like the asset, described by its rule. A snapshot
    source (no partitions) has no days to compare: only its key's uniqueness is checked."""
    described = {
        UNIQUENESS_CHECK: rules.uniqueness and rules.uniqueness.describe(key_columns),
    }
    if partitions_def is not None:
        described |= {
            VOLUME_CHECK: rules.volume and rules.volume.describe(),
            COMPLETENESS_CHECK: rules.completeness and rules.completeness.describe(),
            LATE_ARRIVALS_CHECK: rules.late_arrivals and rules.late_arrivals.describe(),
            REFERENCES_CHECK: rules.references and rules.describe_references(),
        }
    with acknowledged("partitions_def on an AssetCheckSpec"):
        return [
            dg.AssetCheckSpec(name=name, asset=asset_key, partitions_def=partitions_def, description=text)
            for name, text in described.items()
            if text
        ]


def evaluate_history_quality(
    con: duckdb.DuckDBPyConnection, rules: QualityRules, table: CheckedTable
) -> list[CheckOutcome]:
    """A snapshot source's checks: one verdict on its whole history."""
    if rules.uniqueness is None:
        return []
    return [
        CheckOutcome(UNIQUENESS_CHECK, judge_history_uniqueness(con, table.name, table.key_columns, table.personal), {})
    ]


def record_quality_profiles(con: duckdb.DuckDBPyConnection, rules: QualityRules, table: CheckedTable, window) -> None:
    """Inside the write's transaction: the written days' profiles, the checks' history."""
    if rules.reads_history:
        record_profiles(con, table.name, table.day_column, table.columns, window)


def evaluate_quality(
    con: duckdb.DuckDBPyConnection,
    rules: QualityRules,
    table: CheckedTable,
    window: DateWindow,
    arrivals: dict[str, Arrivals],
    tolerance_days: int,
    dimensions_through: dict[str, dt.date | None],
    today: dt.date | None = None,
) -> list[CheckOutcome]:
    """The quality checks' outcomes for the days of `window`, from the stored profiles, each
    day's `arrivals` (days missing there had no rows) and the table itself (keys, references;
    `dimensions_through`: each referenced dimension's last snapshot day)."""
    today = today or dt.datetime.now(dt.UTC).date()
    profiles = {}
    if rules.reads_history:
        profiles = read_profiles(con, table.name, (window[0] - dt.timedelta(days=rules.history_days), window[1]))
    no_rows = Arrivals(0, 0, 0)

    def per_day(judge):
        return lambda: {key: judge(dt.date.fromisoformat(key)) for key in window_keys(window)}

    # Each enabled check: its verdicts per day, and the figure its run-level verdict sums up.
    judges = {
        VOLUME_CHECK: (rules.volume, per_day(lambda day: judge_volume(rules.volume, day, profiles, today)), "rows"),
        COMPLETENESS_CHECK: (
            rules.completeness,
            per_day(lambda day: judge_completeness(rules.completeness, day, profiles, table.columns)),
            None,
        ),
        LATE_ARRIVALS_CHECK: (
            rules.late_arrivals,
            per_day(
                lambda day: judge_late_arrivals(
                    rules.late_arrivals, day, arrivals.get(day.isoformat(), no_rows), tolerance_days
                )
            ),
            "late_rows",
        ),
        UNIQUENESS_CHECK: (
            rules.uniqueness,
            lambda: judge_uniqueness(
                con, rules.uniqueness, table.name, table.day_column, table.key_columns, window, table.personal
            ),
            "keys_on_other_days",
        ),
        REFERENCES_CHECK: (
            rules.references,
            lambda: judge_references(
                con, rules.references, table.name, table.day_column, window, dimensions_through, table.personal
            ),
            None,
        ),
    }
    outcomes = []
    for name, (rule, judge, total) in judges.items():
        if not rule:
            continue
        by_day = judge()
        summary = {"partitions": len(by_day)}
        if total:
            summary[total] = sum(v.metadata[total] for v in by_day.values())
        outcomes.append(CheckOutcome(name, worst(by_day, summary, name), by_day, plotted=True))
    return outcomes
