"""Raw runs of different days in parallel (`ML_PLATFORM_PARALLEL_RAW`): each run works in its own
DuckDB file, writes its days as Parquet files and commits them in one short warehouse transaction
(`raw.partition_files`). The tables it leaves, and the clean layer built on them, are the
embedded mode's to the row.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
import pytest

from conftest import Runner
from helpers import run_metadata

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


@pytest.fixture
def demo_landing(tmp_path: Path) -> Path:
    from ml_platform.demo import generate

    generate(tmp_path / "demo", days=4, events_per_day=300, seed=5, end_date=dt.date(2026, 11, 18))
    return tmp_path / "demo" / "landing"


def test_parallel_raw_leaves_the_embedded_tables_and_replaces_a_day_atomically(
    data_dir, demo_landing, tmp_path, monkeypatch
):
    from ml_platform.definitions import build_definitions

    # The embedded mode on the same files.
    embedded_dir = tmp_path / "embedded"
    shutil.copytree(demo_landing, embedded_dir / "landing")
    monkeypatch.setenv("ML_PLATFORM_DATA_DIR", str(embedded_dir))
    with dg.instance_for_test() as instance:
        embedded = Runner(build_definitions(), instance, embedded_dir)
        _build(embedded, one_run_per_day=False)
        expected = _tables(embedded)

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

        whole_catalog = runner.query(
            "SELECT strftime(partition_date, '%Y-%m-%d'), file_url, row_count FROM partition_files"
            " WHERE table_name = 'raw_events' ORDER BY 1"
        )
        assert whole_catalog[0] == (EMPTY_DAY, None, 0)
        catalog = whole_catalog[1:]
        assert [day for day, *_ in catalog] == DAYS
        for day, url, rows in catalog:
            assert url.startswith(f"{data_dir}/lake/raw/raw_events/landing_date={day}/") and Path(url).exists()
            assert rows == runner.query(f"SELECT count(*) FROM raw_events WHERE landing_date = '{day}'")[0][0]

        # A day landed again: its run swaps in a new file; the other days keep theirs.
        day_folder = data_dir / "landing" / "events" / DAYS[1]
        for path in sorted(day_folder.iterdir())[1:]:
            path.unlink()
        result = runner.run("raw_events", partition=DAYS[1], tags={"ml_platform/accept_missing_files": "true"})
        again = dict(
            (day, (url, rows))
            for day, url, rows in runner.query(
                "SELECT strftime(partition_date, '%Y-%m-%d'), file_url, row_count FROM partition_files"
                " WHERE table_name = 'raw_events'"
            )
        )
        before = {day: (url, rows) for day, url, rows in whole_catalog}
        assert again[DAYS[1]] != before[DAYS[1]] and result.run_id in again[DAYS[1]][0]
        assert {d: v for d, v in again.items() if d != DAYS[1]} == {d: v for d, v in before.items() if d != DAYS[1]}
        kept = runner.query(f"SELECT count(DISTINCT source_file) FROM raw_events WHERE landing_date = '{DAYS[1]}'")
        assert kept == [(1,)]
        metadata = run_metadata(result, "raw_events")
        assert metadata["dagster/row_count"] == sum(rows for _, rows in again.values())
