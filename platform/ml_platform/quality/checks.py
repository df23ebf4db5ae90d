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
    if rules.enabled:
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
    if not rules.enabled:
        return []
    today = today or dt.datetime.now(dt.UTC).date()
    first = window[0] - dt.timedelta(days=rules.history_days)
    profiles = read_profiles(con, table, (first, window[1]))
    days = {key: dt.date.fromisoformat(key) for key in window_keys(window)}
    outcomes = []
    if rules.volume is not None:
        by_day = {key: judge_volume(rules.volume, day, profiles, today) for key, day in days.items()}
        summary = {"partitions": len(by_day), "rows": sum(v.metadata["rows"] for v in by_day.values())}
        outcomes.append(CheckOutcome(VOLUME_CHECK, worst(by_day, summary, "volume"), by_day))
    if rules.completeness is not None:
        by_day = {key: judge_completeness(rules.completeness, day, profiles, columns) for key, day in days.items()}
        summary = {"partitions": len(by_day)}
        outcomes.append(CheckOutcome(COMPLETENESS_CHECK, worst(by_day, summary, "completeness"), by_day))
    if rules.late_arrivals is not None:
        none = Arrivals(0, 0, 0)
        by_day = {
            key: judge_late_arrivals(rules.late_arrivals, day, arrivals.get(key, none), tolerance_days)
            for key, day in days.items()
        }
        summary = {"partitions": len(by_day), "late_rows": sum(v.metadata["late_rows"] for v in by_day.values())}
        outcomes.append(CheckOutcome(LATE_ARRIVALS_CHECK, worst(by_day, summary, "late arrivals"), by_day))
    return outcomes
