"""Clean and curated tables as lake tables (`ML_PLATFORM_LAKE_TABLES`, with the raw layer's
`ML_PLATFORM_PARALLEL_RAW`): every partitioned table the contract writer writes is an Iceberg table,
the warehouse a view of it (`ml_platform.lakehouse.staged`). The tables equal the embedded mode's to
the row; a second engine reads them; a failed contract leaves the lake table as it was.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from conftest import Runner
from ml_platform.curated.audit import audit_tables
from ml_platform.declarations import discover_curated_tables, discover_specs
from ml_platform.definitions import partition_columns
from ml_platform.lakehouse import tables

FIRST, LAST = "2026-11-15", "2026-11-18"
# Tables built, and the columns left out of the comparison (when a run happened, not what it read).
COMPARED = {
    "raw_events": "EXCLUDE (ingested_at)",
    "clean_events": "EXCLUDE (ingested_at)",
    "quarantine_events": "EXCLUDE (ingested_at, quarantined_at)",
    "user_daily_features": "",
    "user_activity": "EXCLUDE (created_at)",
}


def _build(runner: Runner) -> None:
    runner.run("raw_users", range_=(FIRST, LAST))
    runner.run("clean_users")
    runner.run("raw_events", range_=(FIRST, LAST))
    runner.run("clean_events", range_=("2026-11-10", LAST))
    runner.run("user_daily_features", range_=(FIRST, LAST))
    runner.run("user_activity", range_=(FIRST, LAST))


def _tables(runner: Runner) -> dict[str, list[tuple]]:
    return {name: runner.query(f"SELECT * {left_out} FROM {name} ORDER BY ALL") for name, left_out in COMPARED.items()}


@pytest.fixture
def demo_landing(tmp_path: Path) -> Path:
    from ml_platform.demo import generate

    generate(tmp_path / "demo", days=4, events_per_day=300, seed=5, end_date=dt.date(2026, 11, 18))
    return tmp_path / "demo" / "landing"


def test_clean_and_curated_lake_tables_equal_the_embedded_ones_and_a_second_engine_reads_them(
    data_dir, demo_landing, tmp_path, monkeypatch
):
    from ml_platform.definitions import build_definitions

    embedded_dir = tmp_path / "embedded"
    shutil.copytree(demo_landing, embedded_dir / "landing")
    monkeypatch.setenv("ML_PLATFORM_DATA_DIR", str(embedded_dir))
    with dg.instance_for_test() as instance:
        embedded = Runner(build_definitions(), instance, embedded_dir)
        _build(embedded)
        expected = _tables(embedded)
    assert all(expected.values())

    shutil.copytree(demo_landing, data_dir / "landing", dirs_exist_ok=True)
    monkeypatch.setenv("ML_PLATFORM_DATA_DIR", str(data_dir))
    monkeypatch.setenv("ML_PLATFORM_PARALLEL_RAW", "true")
    monkeypatch.setenv("ML_PLATFORM_LAKE_TABLES", "true")
    with dg.instance_for_test() as instance:
        runner = Runner(build_definitions(), instance, data_dir)
        _build(runner)
        assert _tables(runner) == expected
        # The warehouse holds views of the lake tables, not tables.
        views = {name for (name,) in runner.query("SELECT view_name FROM duckdb_views() WHERE NOT internal")}
        assert {"raw_events", "clean_events", "user_daily_features", "user_activity"} <= views
        # The audit recomputes the lake tables' partitions in its scratch database and finds them
        # equal (and writes nothing to the lake meanwhile).
        audited = [t for t in discover_curated_tables() if t.name in ("user_daily_features", "user_activity")]
        days = [dt.date(2026, 11, 15) + dt.timedelta(days=i) for i in range(4)]
        snapshots = {t.name: tables.load_table(t.name).current_snapshot().snapshot_id for t in audited}
        results = audit_tables(
            data_dir / "warehouse.duckdb", audited, partition_columns(discover_specs(), audited), days, instance
        )
        assert [(r.table, len(r.checked), r.findings) for r in results] == [
            ("user_activity", 4, []),
            ("user_daily_features", 4, []),
        ]
        assert {t.name: tables.load_table(t.name).current_snapshot().snapshot_id for t in audited} == snapshots

    # A second engine: pyiceberg's own scan, in a process that never opened the warehouse.
    for name in ("clean_events", "user_activity"):
        scanned = tables.load_table(name).scan().to_arrow()
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.register("scanned", scanned)
        assert con.execute(f"SELECT * {COMPARED[name]} FROM scanned ORDER BY ALL").fetchall() == expected[name], name
        con.close()


def test_a_refused_write_leaves_the_lake_table_and_its_files_as_they_were(instance, data_dir, monkeypatch):
    """The writer's refusal (rows outside the window) comes before the commit: no snapshot, no file."""
    from test_curated_tables import WINDOWED, _land, _runner, _table

    monkeypatch.setenv("ML_PLATFORM_PARALLEL_RAW", "true")
    monkeypatch.setenv("ML_PLATFORM_LAKE_TABLES", "true")
    _land(data_dir, "2026-11-02", 2)
    _land(data_dir, "2026-11-03", 3)
    good = _runner(_table(WINDOWED), instance, data_dir)
    good.run("raw_events", range_=("2026-11-02", "2026-11-03"))
    good.run("clean_events", range_=("2026-11-02", "2026-11-03"))
    good.run("daily_counts", partition="2026-11-02")
    before = good.query("SELECT * FROM daily_counts ORDER BY ALL")
    table = tables.load_table("daily_counts")
    snapshot, files = table.current_snapshot().snapshot_id, set(Path(table.location()).rglob("*.parquet"))
    assert before == [(dt.date(2026, 11, 2), 2)] and len(files) == 1

    leaky = _runner(_table(f"-- $start $end\n{WINDOWED.split(' WHERE ')[0]} GROUP BY 1"), instance, data_dir)
    result = leaky.run("daily_counts", partition="2026-11-03", expect_success=False)
    [failure] = result.get_step_failure_events()
    assert (
        "1 of 2 written rows fall outside day 2026-11-03..2026-11-03" in failure.step_failure_data.error.cause.message
    )
    assert leaky.query("SELECT * FROM daily_counts ORDER BY ALL") == before
    table = tables.load_table("daily_counts")
    assert table.current_snapshot().snapshot_id == snapshot
    assert set(Path(table.location()).rglob("*.parquet")) == files
