"""Raw runs of different days in parallel (`ML_PLATFORM_PARALLEL_RAW`): each run works in its own
DuckDB file, writes its days as Parquet files of the raw Iceberg table and commits them to the
catalog with its ledger and quarantine rows, in one commit (`raw.lake_run`). The tables it leaves,
and the clean layer built on them, are the warehouse tables' to the row.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg

from conftest import Runner, embedded_build
from helpers import run_metadata
from ml_platform.lakehouse.scan import iceberg_scan_sql
from ml_platform.lakehouse.tables import load_table

FIRST, LAST = "2026-11-15", "2026-11-18"
DAYS = ["2026-11-15", "2026-11-16", "2026-11-17", "2026-11-18"]
EMPTY_DAY = "2026-11-14"
LINEAGE = "EXCLUDE (ingested_at)"


def _build(runner: Runner, one_run_per_day: bool) -> None:
    runner.run("raw_users", range_=(FIRST, LAST))
    runner.run("clean_users")
    if one_run_per_day:
        for day in DAYS:
            runner.run("raw_events", partition=day)
    else:
        runner.run("raw_events", range_=(FIRST, LAST))
    runner.run("clean_events", range_=("2026-11-10", LAST))


def _tables(runner: Runner) -> list[list[tuple]]:
    return [
        runner.query(f"SELECT * {LINEAGE} FROM raw_events ORDER BY ALL"),
        runner.query(
            "SELECT * EXCLUDE (ingested_at, modified_at) FROM ingest_ledger WHERE source = 'events' ORDER BY ALL"
        ),
        runner.query("SELECT * EXCLUDE (recorded_at) FROM quarantined_files ORDER BY ALL"),
        runner.query("SELECT * FROM rejected_lines ORDER BY ALL"),
        runner.query(f"SELECT * {LINEAGE} FROM clean_events ORDER BY ALL"),
    ]


def test_parallel_raw_leaves_the_embedded_tables_and_replaces_a_day_atomically(
    data_dir, demo_landing, tmp_path, monkeypatch
):
    from ml_platform.definitions import build_definitions

    # The embedded mode on the same files.
    expected = embedded_build(
        demo_landing, tmp_path / "embedded", monkeypatch, lambda r: _build(r, one_run_per_day=False), _tables
    )

    shutil.copytree(demo_landing, data_dir / "landing", dirs_exist_ok=True)
    monkeypatch.setenv("ML_PLATFORM_DATA_DIR", str(data_dir))
    monkeypatch.setenv("ML_PLATFORM_PARALLEL_RAW", "true")
    defs = build_definitions()
    raw = defs.get_assets_def("raw_events")
    # No warehouse pool slot while it works, and a backfill is one run per day.
    assert raw.backfill_policy == dg.BackfillPolicy.multi_run(1)
    assert raw.op.pool is None
    with dg.instance_for_test() as instance:
        runner = Runner(defs, instance, data_dir)
        # A day with nothing landed first: no file, and an empty raw table until a day has rows.
        runner.run("raw_events", partition=EMPTY_DAY)
        assert runner.query("SELECT count(*) FROM raw_events") == [(0,)]
        _build(runner, one_run_per_day=True)
        assert _tables(runner) == expected
        assert all(rows for rows in expected[:1] + expected[4:])

        # One file per day with rows, named by the run, in the table's own location.
        files = lake_files("raw_events")
        assert sorted(files) == DAYS
        for day, ((path, rows),) in files.items():
            assert path.startswith(f"{data_dir}/lake/raw_events/data/landing_date={day}/") and Path(path).exists()
            assert rows == runner.query(f"SELECT count(*) FROM raw_events WHERE landing_date = '{day}'")[0][0]
        snapshot = load_table("raw_events").current_snapshot().snapshot_id

        # A day landed again: its run swaps in a new file; the other days keep theirs.
        day_folder = data_dir / "landing" / "events" / DAYS[1]
        for path in sorted(day_folder.iterdir())[1:]:
            path.unlink()
        result = runner.run("raw_events", partition=DAYS[1], tags={"ml_platform/accept_missing_files": "true"})
        again = lake_files("raw_events")
        assert again[DAYS[1]] != files[DAYS[1]] and result.run_id in again[DAYS[1]][0][0]
        assert {d: v for d, v in again.items() if d != DAYS[1]} == {d: v for d, v in files.items() if d != DAYS[1]}
        # The table before the swap is still there, whole, at its snapshot.
        assert runner.query(
            f"SELECT count(*) FROM {iceberg_scan_sql(load_table('raw_events').metadata_location, snapshot)}"
        ) == [(sum(rows for ((_, rows),) in files.values()),)]
        kept = runner.query(f"SELECT count(DISTINCT source_file) FROM raw_events WHERE landing_date = '{DAYS[1]}'")
        assert kept == [(1,)]
        metadata = run_metadata(result, "raw_events")
        assert metadata["dagster/row_count"] == sum(rows for ((_, rows),) in again.values())
        assert metadata["lake_snapshot_id"] == str(load_table("raw_events").current_snapshot().snapshot_id)
        assert metadata["lake_commits_redone"] == 0


def lake_files(table: str) -> dict[str, list[tuple[str, int]]]:
    """The lake table's current data files by day: (path, rows), as its Iceberg metadata lists them."""
    files = load_table(table).inspect.files().select(["file_path", "partition", "record_count"]).to_pylist()
    by_day: dict[str, list[tuple[str, int]]] = {}
    for file in files:
        by_day.setdefault(file["partition"]["landing_date"].isoformat(), []).append(
            (file["file_path"], file["record_count"])
        )
    return {day: sorted(found) for day, found in sorted(by_day.items())}
