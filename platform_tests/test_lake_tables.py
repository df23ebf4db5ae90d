"""Clean and curated tables as lake tables (`ML_PLATFORM_LAKE_TABLES`, with the raw layer's
`ML_PLATFORM_PARALLEL_RAW`): every table the clean and curated layers write, replaced a window of
days at a time or whole, is an Iceberg table, the warehouse a view of it
(`ml_platform.lakehouse.staged`), and the warehouse file a cache of those views. The tables equal the embedded mode's to
the row; a second engine reads them; the audit recomputes them. (A refused write on the lake:
test_curated_tables.py; the deployed topology, PostgreSQL and S3: test_s3_lake.py.)
"""

from __future__ import annotations

import datetime as dt
import shutil

import dagster as dg
import duckdb
import pytest

from conftest import Runner, embedded_build
from ml_platform.curated.audit import audit_tables
from ml_platform.declarations import discover_curated_tables, discover_specs
from ml_platform.definitions import partition_columns
from ml_platform.lakehouse import replace, tables, working_copy
from ml_platform.warehouse import Warehouse

FIRST, LAST = "2026-11-15", "2026-11-18"
LEDGER_ROWS = "SELECT * EXCLUDE (ingested_at, modified_at) FROM ingest_ledger ORDER BY ALL"
# Tables built, and the columns left out of the comparison (when a run happened, not what it read).
COMPARED = {
    "raw_events": "EXCLUDE (ingested_at)",
    "clean_events": "EXCLUDE (ingested_at)",
    "quarantine_events": "EXCLUDE (ingested_at, quarantined_at)",
    "user_daily_features": "",
    "user_activity": "EXCLUDE (created_at)",
    # Tables replaced whole: a snapshot history, a feature view's frontier.
    "clean_users": "EXCLUDE (ingested_at)",
    "user_activity__frontier": "EXCLUDE (created_at, __available)",
}


def _build(runner: Runner) -> None:
    runner.run("raw_users", range_=(FIRST, LAST))
    runner.run("clean_users")
    runner.run("raw_events", range_=(FIRST, LAST))
    runner.run("clean_events", range_=("2026-11-10", LAST))
    runner.run("user_daily_features", range_=(FIRST, LAST))
    runner.run("user_activity", range_=(FIRST, LAST))


def _files_by_day(name: str) -> list:
    """The table's current data files, grouped by partition (a `types.SimpleNamespace` per day)."""
    import types

    found: dict = {}
    for file in tables.load_table(name).inspect.files().select(["file_path", "partition"]).to_pylist():
        found.setdefault(tuple(file["partition"].values()), []).append(file["file_path"])
    return [types.SimpleNamespace(partition=key, files=files) for key, files in sorted(found.items())]


def _tables(runner: Runner) -> dict[str, list[tuple]]:
    return {name: runner.query(f"SELECT * {left_out} FROM {name} ORDER BY ALL") for name, left_out in COMPARED.items()}


def test_clean_and_curated_lake_tables_equal_the_embedded_ones_and_a_second_engine_reads_them(
    data_dir, demo_landing, tmp_path, monkeypatch
):
    from ml_platform.definitions import build_definitions

    expected = embedded_build(demo_landing, tmp_path / "embedded", monkeypatch, _build, _tables)
    assert all(expected.values())

    shutil.copytree(demo_landing, data_dir / "landing", dirs_exist_ok=True)
    monkeypatch.setenv("ML_PLATFORM_DATA_DIR", str(data_dir))
    monkeypatch.setenv("ML_PLATFORM_PARALLEL_RAW", "true")
    monkeypatch.setenv("ML_PLATFORM_LAKE_TABLES", "true")
    # A raw run writes its rows out as it reads its files (`working_copy.flush`), here once it holds 100.
    monkeypatch.setattr(working_copy, "FLUSH_ROWS", 100)
    with dg.instance_for_test() as instance:
        runner = Runner(build_definitions(), instance, data_dir)
        _build(runner)
        assert _tables(runner) == expected
        files_per_day = [len(day.files) for day in _files_by_day("raw_events")]
        assert len(files_per_day) == 4 and min(files_per_day) > 1, files_per_day  # a day in several flushes
        # The warehouse holds views of the lake tables, and no table.
        views = {name for (name,) in runner.query("SELECT view_name FROM duckdb_views() WHERE NOT internal")}
        assert {"raw_events", "clean_events", "user_daily_features", "user_activity"} <= views
        assert {"clean_users", "clean_users__snapshots", "user_activity__frontier"} <= views
        assert runner.query("SELECT table_name FROM duckdb_tables() WHERE NOT temporary") == []
        # A clean write's quarantine and its days' profiles are lake tables too, committed with the
        # clean table in one catalog commit (one run id on the three snapshots).
        assert {"quarantine_events", "partition_profiles"} <= views
        run_of = replace.RUN_PROPERTY
        clean_run = tables.load_table("clean_events").current_snapshot().summary[run_of]
        assert tables.load_table("quarantine_events").current_snapshot().summary[run_of] == clean_run
        assert clean_run in {s.summary[run_of] for s in tables.load_table("partition_profiles").snapshots()}
        # A raw run commits its days with its source's ledger rows, in one catalog commit.
        assert {"ingest_ledger", "quarantined_files", "rejected_lines"} <= views
        raw_run = tables.load_table("raw_events").current_snapshot().summary[run_of]
        assert tables.load_table("ingest_ledger").current_snapshot().summary[run_of] == raw_run
        # Every view reads its table's files, none needs the iceberg extension (a map column's
        # statistics name its leaves: the profiles' null counts are found in its files).
        definitions = dict(runner.query("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal"))
        assert [name for name, text in definitions.items() if "iceberg_scan" in text] == []
        assert "read_parquet(" in definitions["partition_profiles"]
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

        # The warehouse file is a cache: made anew, its first write transaction finds every table
        # in the catalog, and every table reads as before.
        (data_dir / "warehouse.duckdb").unlink()
        with Warehouse(database=str(data_dir / "warehouse.duckdb")).transaction():
            pass
        assert _tables(runner) == expected

    # A second engine: pyiceberg's own scan, in a process that never opened the warehouse.
    for name in ("clean_events", "user_activity"):
        scanned = tables.load_table(name).scan().to_arrow()
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.register("scanned", scanned)
        assert con.execute(f"SELECT * {COMPARED[name]} FROM scanned ORDER BY ALL").fetchall() == expected[name], name
        con.close()


def test_every_table_is_a_lake_table_unless_lake_tables_are_off(monkeypatch):
    """Clean tables (event days and snapshot histories), curated tables, feature views, labels and
    stream views are lake tables."""
    from ml_platform.clean.write import clean_table
    from ml_platform.curated.stream_update import view_table
    from ml_platform.declarations import discover_labels, discover_stream_views

    monkeypatch.setenv("ML_PLATFORM_LAKE_TABLES", "true")
    on_lake = {spec.clean_table: clean_table(spec).on_lake for spec in discover_specs() if spec.clean_table is not None}
    assert on_lake["clean_events"] and on_lake["clean_users"] and on_lake["clean_products"]
    assert all(t.table.on_lake for t in [*discover_curated_tables(), *discover_labels()])
    assert all(view_table(v).on_lake for v in discover_stream_views())
    monkeypatch.setenv("ML_PLATFORM_LAKE_TABLES", "false")
    assert not clean_table(next(s for s in discover_specs() if s.name == "events")).on_lake
    monkeypatch.delenv("ML_PLATFORM_LAKE_TABLES")  # the default
    assert clean_table(next(s for s in discover_specs() if s.name == "events")).on_lake


def test_a_lake_table_written_twice_in_one_transaction_is_refused_and_nothing_is_committed(data_dir, monkeypatch):
    """The second replace would overwrite the first one's staged rows: refused, and the transaction
    rolls back with nothing committed to the lake."""
    from ml_platform.contracts.writer import ContractTable
    from ml_platform.warehouse import Warehouse
    from test_curated_tables import DailyCounts

    monkeypatch.setenv("ML_PLATFORM_LAKE_TABLES", "true")
    table = ContractTable("daily_counts", DailyCounts, "day")
    day = dt.date(2026, 11, 2)
    warehouse = Warehouse(database=str(data_dir / "warehouse.duckdb"))
    with (
        pytest.raises(RuntimeError, match="daily_counts is written twice in one transaction"),
        warehouse.transaction() as con,
    ):
        table.replace(con, (day, day), f"SELECT DATE '{day}' AS day, 1::BIGINT AS events")
        table.replace(con, (day, day), f"SELECT DATE '{day}' AS day, 2::BIGINT AS events")
    assert tables.load_table("daily_counts").current_snapshot() is None


def test_a_warehouse_table_from_before_the_lake_is_adopted_by_its_first_lake_write(data_dir, demo_landing, monkeypatch):
    """A warehouse built with `ML_PLATFORM_LAKE_TABLES=false` (or before lake tables were the
    default): a table's first lake write commits the warehouse table's rows to the lake table (every
    day it holds), then replaces its own days. Nothing is lost; the warehouse then holds a view, and
    tables not written since stay warehouse tables."""
    from ml_platform.definitions import build_definitions

    shutil.copytree(demo_landing, data_dir / "landing", dirs_exist_ok=True)
    monkeypatch.setenv("ML_PLATFORM_LAKE_TABLES", "false")
    with dg.instance_for_test() as instance:
        runner = Runner(build_definitions(), instance, data_dir)
        _build(runner)
        before = _tables(runner)
        assert tables.load_table("user_daily_features") is None
        monkeypatch.setenv("ML_PLATFORM_LAKE_TABLES", "true")
        runner = Runner(build_definitions(), instance, data_dir)
        ledger = runner.query(LEDGER_ROWS)
        runner.run("user_daily_features", partition=LAST)
        assert _tables(runner) == before
        views = {name for (name,) in runner.query("SELECT view_name FROM duckdb_views() WHERE NOT internal")}
        assert "user_daily_features" in views and "clean_events" not in views
        # A raw run adopts the raw table and the shared bookkeeping tables (every source's rows).
        runner.run("raw_events", partition=LAST)
        views = {name for (name,) in runner.query("SELECT view_name FROM duckdb_views() WHERE NOT internal")}
        assert {"raw_events", "ingest_ledger", "quarantined_files", "rejected_lines"} <= views
        assert "raw_users" not in views
        assert _tables(runner)["raw_events"] == before["raw_events"]
        assert {row[0] for row in ledger} == {"events", "users"} and runner.query(LEDGER_ROWS) == ledger
    # One commit adopted the four days, the run's own replaced its day (a delete and an add).
    snapshots = tables.load_table("user_daily_features").snapshots()
    assert len(snapshots) == 3 and snapshots[0].summary["ml_platform.run-id"].startswith("adopted-")
    assert snapshots[0].summary["total-records"] == snapshots[-1].summary["total-records"]
    assert int(snapshots[0].summary["total-records"]) == len(before["user_daily_features"])
