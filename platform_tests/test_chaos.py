"""Crashes and late data converge: `make dev` killed outright twice during its catch-up, and a file
landing late, end with every table equal to an uninterrupted catch-up of the same files.

Two `make dev` runs on copies of one demo week (the tests' small demo), with the stream's broker up
but no producer (`STREAM_RATE=0`): a live stream never settles, and its exactly-once under kills is
`test_kafka_faults.py`'s.
- the reference: the uninterrupted catch-up, settled;
- the chaos run: the previous day's last telemetry file held back; `make dev`'s whole process group
  killed with SIGKILL twice while runs are in flight (once early in the catch-up, once later after
  the restart), started again and settled; then the held-back file lands, after that day's and
  today's views were built, and the platform settles again.

Then every table of both warehouses is compared row by row (EXCEPT ALL both ways), every column
but the wall-clock ones listed in `WALL_CLOCK` by name: when a file was ingested or a serving
snapshot taken says when the platform ran, not what the data says. Nothing else may differ:
feature views, frontiers, labels, training sets and their manifests, serving tables.

What makes this converge is `ml_platform.automation` (a partition is rebuilt whenever something it
declares it reads is newer than it; a run that died is retried with backoff) and the declarations
that `test_declared_reads.py` proves complete; the cases are unit-tested in `test_convergence.py`.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from make_dev import TEST_DEMO, expected_partitions, running_make_dev, wait_until_settled
from ml_platform.demo import generate
from ml_platform.demo.manifest import read_manifest
from ml_platform.warehouse import connect, sql
from platform_server import FINISHED, Platform, process_group_alive

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

SETTLE_TIMEOUT = 900.0  # a catch-up under a loaded 2-core machine; about 2 minutes on a quiet one
KILL_TIMEOUT = 240.0
QUIET_STREAM = {"STREAM_RATE": 0}
# Columns that say when, where or by which run something was done, not what the data says, by table
# ("*": every table that has it): wall-clock times, the ledger batches (file and ingestion time) a
# snapshot was built from, the weather API's address (its port is make dev's), and the Dagster
# run and data version (run-based) of each input a training set's manifest lists beside the
# fingerprint of its rows (compared).
WALL_CLOCK = {
    "*": ("ingested_at", "quarantined_at", "profiled_at", "fetched_at"),
    "clean_users__snapshots": ("batches",),
    "clean_products__snapshots": ("batches",),
    "raw_weather_responses": ("url",),
    "training_set_device_failure_manifest": ("data_version", "run_id"),
    "training_set_churn_manifest": ("data_version", "run_id"),
}


def _kill_when(platform: Platform, succeeded: int) -> int:
    """SIGKILL make dev's whole process group once `succeeded` runs have succeeded and another is
    running; returns how many runs had succeeded."""

    def in_flight() -> int | None:
        runs = platform.runs(limit=1000)
        done = sum(r.status == "SUCCESS" for r in runs)
        running = any(r.status == "STARTED" for r in runs)
        return done if done >= succeeded and running else None

    done = platform.wait_for(in_flight, KILL_TIMEOUT, interval=0.5, what=f"{succeeded} runs to succeed")
    os.killpg(platform.pgid, signal.SIGKILL)
    platform.process.wait(timeout=30)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and process_group_alive(platform.pgid):
        time.sleep(0.1)
    assert not process_group_alive(platform.pgid)
    return done


def _held_back_file(data_dir: Path, last_day: str) -> Path:
    """The previous day's last telemetry file."""
    previous = (dt.date.fromisoformat(last_day) - dt.timedelta(days=1)).isoformat()
    return sorted((data_dir / "landing" / "telemetry" / previous).iterdir())[-1]


def _settle(platform: Platform) -> None:
    manifest = read_manifest(platform.data_dir)
    wait_until_settled(platform, expected_partitions(manifest, dt.datetime.now(dt.UTC)), SETTLE_TIMEOUT)
    assert all(r.status in FINISHED for r in platform.runs(limit=1000))


def _tables(con, database: str) -> dict[str, list[str]]:
    rows = con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = ? AND schema_name = 'main'"
        " ORDER BY table_name, column_index",
        [database],
    ).fetchall()
    tables: dict[str, list[str]] = {}
    for table, column in rows:
        tables.setdefault(table, []).append(column)
    return tables


def _differences(reference: Path, chaos: Path) -> dict[str, list[str]]:
    """Per table that differs: the columns whose values differ (or why the table cannot be compared)."""
    found: dict[str, list[str]] = {}
    with connect(reference, read_only=True) as con:
        con.execute(f"ATTACH {sql.literal(str(chaos))} AS chaos (READ_ONLY)")
        ours = _tables(con, con.execute("SELECT current_database()").fetchone()[0])
        theirs = _tables(con, "chaos")
        for table in sorted(set(ours) | set(theirs)):
            if ours.get(table) != theirs.get(table):
                found[table] = ["(not in both, or other columns)"]
                continue
            wall = set(WALL_CLOCK["*"]) | set(WALL_CLOCK.get(table, ()))
            columns = ", ".join(sql.ident(c) for c in ours[table] if c not in wall)
            if not columns:
                continue
            a, b = (
                f"SELECT {columns} FROM main.{sql.ident(table)}",
                f"SELECT {columns} FROM chaos.main.{sql.ident(table)}",
            )
            if con.execute(
                f"SELECT count(*) FROM (({a}) EXCEPT ALL ({b})) UNION ALL SELECT count(*) FROM (({b}) EXCEPT ALL ({a}))"
            ).fetchall() == [(0,), (0,)]:
                continue
            found[table] = [
                c
                for c in ours[table]
                if c not in wall
                and con.execute(
                    f"SELECT count(*) FROM (SELECT {sql.ident(c)} FROM main.{sql.ident(table)}"
                    f" EXCEPT ALL SELECT {sql.ident(c)} FROM chaos.main.{sql.ident(table)})"
                ).fetchone()[0]
            ] or ["(rows pair up differently)"]
    return found


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """One demo week's landing files, copied into each run's data folder."""
    data_dir = tmp_path_factory.mktemp("chaos_demo") / "data"
    generate(data_dir, end_date=dt.datetime.now(dt.UTC).date(), **TEST_DEMO)
    return data_dir


def test_killed_twice_and_a_late_file_settle_to_the_tables_of_an_uninterrupted_catch_up(tmp_path: Path, demo: Path):
    reference_root, chaos_root = tmp_path / "reference", tmp_path / "chaos"
    shutil.copytree(demo, reference_root / "data")
    shutil.copytree(demo, chaos_root / "data")
    manifest = read_manifest(demo)
    late = _held_back_file(chaos_root / "data", manifest["end_date"])
    held = tmp_path / late.name
    late.rename(held)

    started = time.monotonic()
    with running_make_dev(reference_root, name="reference", make_vars=QUIET_STREAM) as platform:
        _settle(platform)
    reference_seconds = time.monotonic() - started

    started = time.monotonic()
    with running_make_dev(chaos_root, name="chaos_1", make_vars=QUIET_STREAM) as platform:
        first_kill = _kill_when(platform, succeeded=8)
    with running_make_dev(chaos_root, name="chaos_2", make_vars=QUIET_STREAM) as platform:
        second_kill = _kill_when(platform, succeeded=first_kill + 25)
    with running_make_dev(chaos_root, name="chaos_3", make_vars=QUIET_STREAM) as platform:
        _settle(platform)
        # The previous day's last file lands after today's views were built.
        landed_at = time.time()
        held.rename(late)
        platform.wait_for(
            lambda: any(r.created > landed_at for r in platform.runs(limit=20)), 60, what="the late file's run"
        )
        _settle(platform)
        failed = [r for r in platform.runs(limit=1000) if r.status == "FAILURE"]
    chaos_seconds = time.monotonic() - started
    print(
        f"reference catch-up {reference_seconds:.0f} s; chaos {chaos_seconds:.0f} s, killed after"
        f" {first_kill} and {second_kill} succeeded runs; {len(failed)} failed runs after the restarts"
    )

    assert _differences(reference_root / "data" / "warehouse.duckdb", chaos_root / "data" / "warehouse.duckdb") == {}
