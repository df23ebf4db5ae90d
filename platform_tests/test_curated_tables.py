"""A curated table is its SQL plus its contract: the factory's asset, its writer guards and metadata."""

from __future__ import annotations

import datetime as dt

import ibis.expr.datatypes as ibis_dt
import pytest
from pandera.ibis import DataFrameModel, Field

from conftest import Runner, source_runner, write_landing
from helpers import partition_checks, partition_metadata, run_metadata
from ml_platform.curated import CuratedTable
from ml_platform.curated.table import curated_asset
from ml_platform.declarations.sources.events import SPEC as EVENTS

HEADER = "event_id,user_id,event_type,event_time,product_id,amount\n"


class DailyCounts(DataFrameModel):
    day: ibis_dt.Date = Field(nullable=False, description="UTC day.")
    events: ibis_dt.Int64 = Field(ge=1, description="Events that day.")

    class Config:
        strict = True


def _table(sql: str) -> CuratedTable:
    return CuratedTable(
        name="daily_counts",
        description="Events per day.",
        contract=DailyCounts,
        partition_column="day",
        sql=sql,
        reads=("clean_events",),
    )


WINDOWED = (
    "SELECT event_date AS day, count(*) AS events FROM clean_events WHERE event_date BETWEEN $start AND $end GROUP BY 1"
)


def _runner(table: CuratedTable, instance, data_dir) -> Runner:
    return source_runner(EVENTS, instance, data_dir, extra_assets=[curated_asset(table)])


def _land(data_dir, day: str, n: int) -> None:
    rows = "".join(f"{day}-{i},u{i},page_view,{day}T10:00:00Z,,\n" for i in range(n))
    write_landing(data_dir, "events", day, "e.csv", HEADER + rows)


def test_declaration_is_checked():
    with pytest.raises(ValueError, match="partition_column 'date' is not a column of DailyCounts"):
        CuratedTable(name="x", description="", contract=DailyCounts, partition_column="date", sql=WINDOWED, reads=())
    with pytest.raises(ValueError, match=r"must select the window with \$start and \$end"):
        _table("SELECT event_date AS day, count(*) AS events FROM clean_events GROUP BY 1")


def test_range_run_records_each_partition_and_the_table(instance, data_dir):
    runner = _runner(_table(WINDOWED), instance, data_dir)
    for day, n in (("2026-11-02", 2), ("2026-11-03", 3), ("2026-11-04", 5)):
        _land(data_dir, day, n)
    runner.run("raw_events", range_=("2026-11-02", "2026-11-04"))
    runner.run("clean_events", range_=("2026-11-02", "2026-11-04"))
    result = runner.run("daily_counts", range_=("2026-11-02", "2026-11-04"))

    assert runner.query("SELECT day, events FROM daily_counts ORDER BY 1") == [
        (dt.date(2026, 11, 2), 2),
        (dt.date(2026, 11, 3), 3),
        (dt.date(2026, 11, 4), 5),
    ]
    per_partition = partition_metadata(result, "daily_counts")
    assert {p: m["dagster/partition_row_count"] for p, m in per_partition.items()} == {
        "2026-11-02": 1,
        "2026-11-03": 1,
        "2026-11-04": 1,
    }
    meta = run_metadata(result, "daily_counts")
    assert (meta["dagster/row_count"], meta["dagster/table_name"]) == (3, "daily_counts")
    assert "| day | events |" in meta["preview"]
    assert {p: c.passed for p, c in partition_checks(result, "daily_counts").items()} == {
        "2026-11-02": True,
        "2026-11-03": True,
        "2026-11-04": True,
    }


@pytest.mark.parametrize("lake", [False, True], ids=["warehouse", "lake"])
def test_rows_outside_the_window_are_refused_and_nothing_changes(instance, data_dir, monkeypatch, lake):
    """A query that ignores the window would write partitions the run does not own. On the lake
    (`ML_PLATFORM_LAKE_TABLES`) the refusal comes before the commit: no snapshot, no file."""
    if lake:
        monkeypatch.setenv("ML_PLATFORM_LAKE_TABLES", "true")
    _land(data_dir, "2026-11-02", 2)
    _land(data_dir, "2026-11-03", 3)
    good = _runner(_table(WINDOWED), instance, data_dir)
    good.run("raw_events", range_=("2026-11-02", "2026-11-03"))
    good.run("clean_events", range_=("2026-11-02", "2026-11-03"))
    good.run("daily_counts", partition="2026-11-02")
    before = good.query("SELECT * FROM daily_counts ORDER BY ALL")
    assert before == [(dt.date(2026, 11, 2), 2)]
    if lake:
        lake_before = _lake_state("daily_counts")
        assert len(lake_before[1]) == 1

    # `$start`/`$end` appear only in a comment: the query reads every day.
    leaky = _runner(_table(f"-- $start $end\n{WINDOWED.split(' WHERE ')[0]} GROUP BY 1"), instance, data_dir)
    result = leaky.run("daily_counts", partition="2026-11-03", expect_success=False)
    [failure] = result.get_step_failure_events()
    assert (
        "1 of 2 written rows fall outside day 2026-11-03..2026-11-03" in failure.step_failure_data.error.cause.message
    )
    assert leaky.query("SELECT * FROM daily_counts ORDER BY ALL") == before
    if lake:
        assert _lake_state("daily_counts") == lake_before


def _lake_state(name: str) -> tuple[int, set]:
    """A lake table's current snapshot and the data files under its location."""
    from pathlib import Path

    from ml_platform.lakehouse.tables import load_table

    table = load_table(name)
    return table.current_snapshot().snapshot_id, set(Path(table.location()).rglob("*.parquet"))


def test_a_feature_view_must_name_its_keys_and_times():
    from ml_platform.curated import FeatureView

    common = dict(
        name="v", description="", contract=DailyCounts, partition_column="day", sql=WINDOWED, reads=("clean_events",)
    )
    with pytest.raises(ValueError, match="entity_columns must name its key column"):
        FeatureView(**common, timestamp_column="day")
    with pytest.raises(ValueError, match="created_column 'created_at' is not a column of DailyCounts"):
        FeatureView(**common, entity_columns=("day",), timestamp_column="day")
