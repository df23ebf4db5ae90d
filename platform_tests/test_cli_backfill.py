"""A 30-day range from the command line is one run of set-based SQL, as the UI's backfill is."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from ml_platform.demo import generate

REPO = Path(__file__).resolve().parents[1]
MATERIALIZE = [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "ml_platform.definitions"]


def cli_env(tmp_path: Path) -> dict:
    """Environment of a CLI run: its own data folder and a DAGSTER_HOME with the repo's dagster.yaml."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    return {
        **os.environ,
        "ML_PLATFORM_DATA_DIR": str(tmp_path / "data"),
        "DAGSTER_HOME": str(home),
        "PYTHONPATH": str(REPO / "platform"),
    }


@pytest.mark.e2e
def test_partition_range_from_cli_is_one_run(tmp_path):
    env = cli_env(tmp_path)
    data = tmp_path / "data"
    manifest = generate(data, days=30, events_per_day=100, seed=5, end_date=dt.date(2026, 11, 20))

    def materialize(select: str, first: str, last: str) -> str:
        done = subprocess.run(
            [*MATERIALIZE, "--select", select, "--partition-range", f"{first}...{last}"],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stderr + done.stdout

    first, last = manifest["start_date"], manifest["end_date"]
    log = materialize("raw_events", first, last)
    assert log.count("RUN_SUCCESS") == 1
    earliest = min(manifest["expected_clean_by_event_date"])
    log = materialize("clean_events", earliest, last)
    assert log.count("RUN_SUCCESS") == 1
    # One step, one write of the whole window.
    assert log.count("STEP_SUCCESS") == 1

    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    by_date = dict(
        con.execute("SELECT strftime(event_date, '%Y-%m-%d'), count(*) FROM clean_events GROUP BY 1").fetchall()
    )
    assert by_date == manifest["expected_clean_by_event_date"]


@pytest.mark.e2e
def test_concurrent_writers_wait_for_the_file_lock_instead_of_failing(tmp_path):
    """A backfill and sensor-style single-partition runs started together all succeed."""
    env = cli_env(tmp_path)
    data = tmp_path / "data"
    manifest = generate(data, days=20, events_per_day=400, seed=9, end_date=dt.date(2026, 11, 20))
    # Create the instance's storage first, as `dagster dev` does: two processes creating a
    # brand-new SQLite instance at the same moment race in its schema migration.
    subprocess.run(
        [sys.executable, "-m", "dagster", "instance", "migrate"],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=120,
    )
    backfill = subprocess.Popen(
        [
            *MATERIALIZE,
            "--select",
            "raw_events",
            "--partition-range",
            f"{manifest['start_date']}...{manifest['end_date']}",
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    singles = [
        subprocess.Popen(
            [*MATERIALIZE, "--select", source, "--partition", manifest["end_date"]],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for source in ("raw_users", "raw_products", "raw_telemetry")
    ]
    try:
        outputs = [p.communicate(timeout=240)[0] for p in (backfill, *singles)]
    finally:
        for p in (backfill, *singles):
            p.kill()
    assert [p.returncode for p in (backfill, *singles)] == [0, 0, 0, 0], [o[-2000:] for o in outputs]
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM raw_events").fetchone()[0] == manifest["totals"]["rows"]
    assert con.execute("SELECT count(DISTINCT source) FROM ingest_ledger").fetchone()[0] == 4
