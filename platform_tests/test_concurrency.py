"""Concurrency: eight partition runs and sensor-triggered runs write one warehouse while a notebook reads it.

A real `dagster dev` with the repository's dagster.yaml (four concurrent runs; the `duckdb` pool
lets one warehouse-writing step run at a time). At once:
- an operator launches eight separate runs, one per day, of `raw_weather` (a week-plus backfill
  from the REST API, served by the fake weather API), as the asset page's button does;
- event files land on two days, and the landing sensor requests `raw_events` runs for them;
- a notebook in its own process keeps opening the warehouse read-only (the documented notebook
  path, `ml_platform.warehouse.connect(path, read_only=True)`), querying and closing it.

The automation sensor is stopped: it would add clean and downstream runs, the same kind of
writer through the same pool, and the test is bounded at two minutes (the crash test runs
automation).

What must hold: every run succeeds; no run's log and no reader attempt mentions a lock failure;
every partition holds exactly its expected rows, and the newest materialization of each reports
exactly those rows (no write was lost or overwritten by a stale one); the notebook's queries kept
succeeding while the runs wrote, in every ten-second stretch and during every write step, none
waiting more than `MAX_READER_WAIT` seconds.

DuckDB lets one process at a time open the file for writing, and no reader in another process while
it does: a query that arrives during a write transaction waits for it (measured: a few percent of
the queries, for at most about 0.2 s) instead of reading alongside it. The test prints the figures.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ml_platform.demo.generator import write_drip_file
from ml_platform.demo.weather_api import LOCATIONS, WeatherApiServer, observations
from ml_platform.warehouse import connect
from platform_server import FINISHED, REPO_ROOT, Platform, running_platform

pytestmark = pytest.mark.e2e

WEATHER_DAYS = [(dt.date(2026, 2, 1) + dt.timedelta(days=i)).isoformat() for i in range(8)]
EVENT_DAYS = [dt.date(2026, 3, 1), dt.date(2026, 3, 2)]
EVENT_FILES = 6  # alternating between the two days, one every FILE_INTERVAL seconds
FILE_INTERVAL = 2.0
EVENTS = 5
LOCK_ERRORS = ("could not set lock", "conflicting lock", "lock on file")
# Seconds. A reader cannot open the file while a writer has it open (DuckDB locks the file per
# process): it waits for that one write (well under a second here), plus connect's backoff, which
# sleeps up to 2 s between tries. Waiting for several writes in a row, or for a whole run, is not allowed.
MAX_READER_WAIT = 5.0
WINDOW = 10.0  # seconds: the notebook must have answered in every stretch this long
LOCKED_OUT = 0.045  # seconds: opening takes ~10-20 ms; connect() sleeps 50 ms before its first retry
SETTLE_TIMEOUT = 150.0


def settled(platform: Platform, last_event_file: Path) -> bool:
    """Every run finished, and the sensor has requested (and raw_events written) the newest file."""
    runs = platform.runs()
    if len(runs) < len(WEATHER_DAYS) or any(r.status not in FINISHED for r in runs):
        return False
    cursor = platform.sensor_cursor("events_landing_sensor")
    stat = last_event_file.stat()
    return bool(cursor) and json.loads(cursor)["arrived_ns"] >= max(stat.st_mtime_ns, stat.st_ctime_ns)


def test_partition_runs_sensor_runs_and_a_reader_share_the_warehouse(tmp_path: Path, monkeypatch):
    with WeatherApiServer() as api:
        monkeypatch.setenv("ML_PLATFORM_WEATHER_API_URL", api.url)
        # Only the runs launched here: the catch-up would fetch every day since 2026-01-01.
        monkeypatch.setenv("ML_PLATFORM_API_CATCH_UP", "false")
        with running_platform(tmp_path, sensor_interval=3, name="dagster_dev_concurrency") as platform:
            try:
                _run(platform, tmp_path)
            except BaseException:
                platform.save_log()
                raise


def _run(platform: Platform, tmp_path: Path) -> None:
    platform.set_sensor("automation", running=False)
    report = tmp_path / "reader.json"
    reader = subprocess.Popen(
        [
            sys.executable,
            str(REPO_ROOT / "platform_tests" / "warehouse_reader.py"),
            str(platform.warehouse_path),
            report,
        ],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        launched = {platform.launch_run("raw_weather", day): day for day in WEATHER_DAYS}
        landed: dict[str, list[Path]] = {day.isoformat(): [] for day in EVENT_DAYS}
        for seq in range(1, EVENT_FILES + 1):
            day = EVENT_DAYS[seq % len(EVENT_DAYS)]
            landed[day.isoformat()].append(write_drip_file(platform.data_dir, day, seq=seq, seed=3, events=EVENTS))
            time.sleep(FILE_INTERVAL)
        last = max((p for paths in landed.values() for p in paths), key=lambda p: p.stat().st_mtime_ns)
        platform.wait_for(lambda: settled(platform, last), SETTLE_TIMEOUT, interval=2, what="every run to finish")
        writes_ended = time.time()
        # Still settled after a sensor tick: nothing was about to start.
        time.sleep(4)
        assert settled(platform, last), platform.describe_runs()
    finally:
        _, stderr = reader.communicate(timeout=30)
    assert reader.returncode == 0, stderr[-3000:]
    attempts = json.loads(report.read_text())

    # Every run succeeded: the eight launched ones and the sensor's.
    runs = platform.runs()
    assert {r.status for r in runs} == {"SUCCESS"}, platform.describe_runs()
    # The weather schedule (00:15 UTC, for the day before) may add a run of its own if the test
    # runs at that time; it must succeed too.
    scheduled = {r.run_id for r in runs if "dagster/schedule_name" in r.tags}
    weather_runs = {r.run_id: r.partition for r in runs if r.assets == ["raw_weather"] and r.run_id not in scheduled}
    assert weather_runs == launched
    sensor_runs = [r for r in runs if r.sensor == "events_landing_sensor"]
    assert {r.partition for r in sensor_runs} == set(landed)
    assert {r.run_id for r in runs} == set(weather_runs) | {r.run_id for r in sensor_runs} | scheduled
    # No run met a lock it could not wait out.
    steps = {}  # run id -> (start, end) of its step that writes the warehouse
    for run in runs:
        log = platform.run_log(run.run_id)
        for event in log:
            assert not any(e in event.message.lower() for e in LOCK_ERRORS), (run.run_id, event.message)
        # The asset's own step (a run launched by hand also runs its raw asset's landing_freshness check).
        own = [e for e in log if f'step "{run.assets[0]}"' in e.message]
        [start] = [e.time for e in own if e.kind == "ExecutionStepStartEvent"]
        [end] = [e.time for e in own if e.kind == "ExecutionStepSuccessEvent"]
        steps[run.run_id] = (start, end)

    # Zero lost writes: each partition holds exactly its rows, and its newest materialization
    # (the last write) reports exactly them.
    expected_weather = {
        day: sum(len(observations(loc, dt.date.fromisoformat(day))) for loc in LOCATIONS) for day in WEATHER_DAYS
    }
    expected_events = {day: EVENTS * len(paths) for day, paths in landed.items()}
    con = connect(platform.warehouse_path, read_only=True)
    try:
        weather = dict(
            con.execute(
                "SELECT strftime(landing_date, '%Y-%m-%d'), count(*) FROM raw_weather"
                f" WHERE landing_date BETWEEN '{WEATHER_DAYS[0]}' AND '{WEATHER_DAYS[-1]}' GROUP BY 1"
            ).fetchall()
        )
        events = dict(
            con.execute("SELECT strftime(landing_date, '%Y-%m-%d'), count(*) FROM raw_events GROUP BY 1").fetchall()
        )
        files = dict(con.execute("SELECT source_file, count(*) FROM raw_events GROUP BY 1").fetchall())
    finally:
        con.close()
    assert weather == expected_weather
    assert events == expected_events
    landing = platform.data_dir / "landing"
    assert files == {p.relative_to(landing).as_posix(): EVENTS for paths in landed.values() for p in paths}
    for asset, expected in (("raw_weather", expected_weather), ("raw_events", expected_events)):
        for day, rows in expected.items():
            newest = platform.materializations(asset, day)[0]
            assert platform.row_count(newest) == rows, (asset, day)

    # The notebook: no failed query, answers throughout the writes, no long wait.
    failures = [a for a in attempts if a["error"]]
    assert not failures, failures[:5]
    # The writes ran from the first run's creation until every run had finished; the notebook
    # starts once the warehouse file exists (the first write creates it).
    first = max(min(r.created for r in runs), min(a["start"] for a in attempts))
    end = writes_ended
    during = [a for a in attempts if first <= a["start"] <= end]
    waits = sorted(a["seconds"] for a in attempts)
    overlapping = {
        run_id: sum(1 for a in attempts if a["start"] <= step_end and a["start"] + a["seconds"] >= step_start)
        for run_id, (step_start, step_end) in steps.items()
    }
    # Measured, not asserted: how often the notebook found a writer holding the file and waited.
    blocked = [a for a in attempts if a["connect_seconds"] > LOCKED_OUT]
    print(
        f"reader: {len(attempts)} queries, {len(during)} in {end - first:.0f}s of writes, "
        f"median wait {waits[len(waits) // 2]:.3f}s, max {waits[-1]:.3f}s, {len(blocked)} waited for a writer "
        f"(longest connect {max(a['connect_seconds'] for a in attempts):.3f}s); runs: {len(runs)}; "
        f"write steps (s, queries overlapping): {[(round(e - s, 2), overlapping[r]) for r, (s, e) in steps.items()]}"
    )
    # Every write step met the notebook: a query ran (or waited) while the step ran.
    assert all(overlapping.values()), overlapping
    assert waits[-1] <= MAX_READER_WAIT, waits[-5:]
    stretch = first
    while stretch + WINDOW <= end:
        assert any(stretch <= a["start"] < stretch + WINDOW for a in during), f"no answer in [{stretch}, +{WINDOW}s)"
        stretch += WINDOW
