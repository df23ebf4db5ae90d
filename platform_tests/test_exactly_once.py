"""Exactly once under a crash: `dagster dev` is killed in the middle of a burst of 100 landing files.

A real `dagster dev` ingests a burst of 100 small event files, all landed on one day. Fifty land
first. A read-only connection (a notebook) holds the warehouse, so the raw run the landing sensor
starts for them is caught inside its step, holding the `duckdb` pool's only slot, when the whole
process group is killed with SIGKILL (a crash: nothing shuts down cleanly). The other fifty land
while the platform is down, and `dagster dev` starts again on the same DAGSTER_HOME and data folder.

What must hold once every run has settled, read from the warehouse and the run records:
- the run killed in flight is marked failed because its process is gone (run monitoring with
  `ml_platform.runs.launcher`), its pool slot is freed and it is retried once; nothing else fails;
- the landing sensor's cursor survived: its runs requested every file exactly once, in landing
  order, across the restart (no file requested twice, none missed);
- a raw run replaces its whole landing day, so the ledger holds one row per file, raw_events
  each file's rows exactly once, and clean_events exactly the 300 expected event ids, once each.

Then the same file lands a second time under another name and another file is renamed. The
sensor requests both once; the raw run refuses to drop the old name's rows (raw stays
reproducible) and changes nothing; the operator accepts the rename with the tag the refusal
names. clean_events keeps exactly the same 300 rows (dedup by event_id), while raw holds what
landed: the copy's rows under both names, the renamed file's rows under its new name only.

Two fast tests check the liveness rule run monitoring uses (`ml_platform.runs.launcher`) on its own:
a reaped, zombie or younger process is not the run's, and only a started run whose process is gone
without recording its end is reported failed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import multiprocessing
import os
import shutil
import subprocess
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ml_platform.demo.generator import write_drip_file
from ml_platform.runs.launcher import process_alive
from ml_platform.warehouse import connect
from platform_server import FINISHED, Platform, Run, running_platform

# The first partition: its raw day touches only clean days 01-01 and 01-02 (its X-3..X-1 do not
# exist), so each raw update costs two clean runs, and no windowed feature is automated this far back.
DAY = dt.date(2026, 1, 1)
CLEAN_DAYS = (DAY.isoformat(), (DAY + dt.timedelta(days=1)).isoformat())
FILES = 100
BEFORE_CRASH = 50  # the rest lands while the platform is down
EVENTS = 3  # per file
SENSOR = "events_landing_sensor"
SETTLE_TIMEOUT = 150.0


def land(data_dir: Path, seq: int) -> Path:
    """One drip file (CSV, JSON Lines or Parquet by `seq`), written atomically like a producer."""
    return write_drip_file(data_dir, DAY, seq=seq, seed=9, events=EVENTS)


def event_ids(seq: int) -> list[str]:
    """The ids `write_drip_file` gives the events of file `seq`."""
    return [f"e-{DAY:%Y%m%d}-d{seq:04d}-{n:04d}" for n in range(1, EVENTS + 1)]


def identity(data_dir: Path, path: Path) -> str:
    """The landing sensor's identity of a file: path under the landing root, size, mtime."""
    stat = path.stat()
    return f"{path.relative_to(data_dir / 'landing').as_posix()}:{stat.st_size}:{stat.st_mtime_ns}"


def sensor_run_key(identities: list[str]) -> str:
    """The run key the landing sensor derives from a tick's files (ingestion/files/sensor.py)."""
    digest = hashlib.sha256("\n".join(sorted(identities)).encode()).hexdigest()[:20]
    return f"events:{DAY.isoformat()}:{digest}"


def sensor_runs(runs: list[Run]) -> list[Run]:
    """The raw runs the landing sensor requested, oldest first (a retry copies its parent's tags)."""
    made = [r for r in runs if r.sensor == SENSOR and "dagster/parent_run_id" not in r.tags]
    return sorted(made, key=lambda r: r.created)


def step_started(platform: Platform, run: Run) -> bool:
    return any(e.kind == "ExecutionStepStartEvent" for e in platform.run_log(run.run_id))


def settled(platform: Platform, last_arrival_ns: int) -> bool:
    """Every run finished, every failed run that will be retried has its retry, the sensor has seen
    the newest file, and both clean days were rebuilt after the latest raw write."""
    runs = platform.runs()
    if any(r.status not in FINISHED for r in runs):
        return False
    retried = {r.tags.get("dagster/parent_run_id") for r in runs}
    failed = [r for r in runs if r.status == "FAILURE"]
    if any(r.tags.get("dagster/will_retry") != "false" and r.run_id not in retried for r in failed):
        return False
    cursor = platform.sensor_cursor(SENSOR)
    if not cursor or json.loads(cursor)["arrived_ns"] < last_arrival_ns:
        return False
    raw = platform.materializations("raw_events", DAY.isoformat())
    if not raw:
        return False
    for day in CLEAN_DAYS:
        clean = platform.materializations("clean_events", day)
        if not clean or int(clean[0]["timestamp"]) <= int(raw[0]["timestamp"]):
            return False
    return True


def wait_settled(platform: Platform, last_arrival_ns: int) -> None:
    platform.wait_for(lambda: settled(platform, last_arrival_ns), SETTLE_TIMEOUT, interval=2, what="runs to settle")
    # Still settled a sensor and automation tick later: nothing was about to start.
    time.sleep(4)
    assert settled(platform, last_arrival_ns), platform.describe_runs()


def query(warehouse: Path, sql: str) -> list[tuple]:
    con = connect(warehouse, read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.mark.e2e
def test_crash_mid_burst_ingests_every_file_exactly_once(tmp_path: Path):
    data = tmp_path / "data"
    (data / "landing").mkdir(parents=True)
    warehouse = data / "warehouse.duckdb"
    duckdb.connect(str(warehouse)).close()  # an empty warehouse, so a reader can open it
    with running_platform(tmp_path, sensor_interval=3, name="dagster_dev_exactly_once") as platform:
        try:
            # A reader holds the file: the first raw run waits for it inside its step.
            notebook = connect(warehouse, read_only=True)
            paths = [land(data, seq) for seq in range(1, BEFORE_CRASH + 1)]

            def caught_in_flight() -> Run | None:
                runs = platform.runs()
                if any(r.status == "STARTING" for r in runs):
                    return None  # a run killed before it starts waits for the start timeout (dagster.yaml)
                started = [r for r in runs if r.status == "STARTED" and r.assets == ["raw_events"]]
                return next((r for r in started if step_started(platform, r)), None)

            in_flight = platform.wait_for(caught_in_flight, 90, interval=0.5, what="a raw run inside its step")
            platform.crash()
            notebook.close()
            paths += [land(data, seq) for seq in range(BEFORE_CRASH + 1, FILES + 1)]
            platform.start()
            identities = [identity(data, p) for p in paths]
            wait_settled(platform, max(max(p.stat().st_mtime_ns, p.stat().st_ctime_ns) for p in paths))

            # The run killed in flight: failed because its process was gone, retried once, and the
            # retry succeeded. Every other run succeeded.
            runs = platform.runs()
            assert [r.run_id for r in runs if r.status == "FAILURE"] == [in_flight.run_id], platform.describe_runs()
            failure = [e.message for e in platform.run_log(in_flight.run_id) if e.kind == "RunFailureEvent"]
            assert len(failure) == 1 and "is gone without recording the run's end" in failure[0], failure
            [retry] = [r for r in runs if r.tags.get("dagster/parent_run_id") == in_flight.run_id]
            assert retry.status == "SUCCESS" and retry.assets == ["raw_events"] and retry.partition == DAY.isoformat()

            # The sensor's cursor survived the crash: its runs, in order, requested consecutive
            # slices of the files in landing order that cover every file once.
            requested = sensor_runs(runs)
            offset = 0
            for run in requested:
                count = int(run.tags["ml_platform/files"])
                assert run.tags["dagster/run_key"] == sensor_run_key(identities[offset : offset + count]), (
                    f"run {run.run_id} ({count} files) is not the next slice after file {offset}"
                )
                offset += count
            assert offset == FILES
            assert in_flight.run_id in {r.run_id for r in requested}

            # The warehouse: one ledger row per file, each file's rows once in raw, every event once in clean.
            names = {p.relative_to(data / "landing").as_posix(): seq for seq, p in enumerate(paths, start=1)}
            ledger = query(
                warehouse,
                "SELECT source_file, count(*), sum(row_count) FROM ingest_ledger WHERE source = 'events' GROUP BY 1",
            )
            assert {f: (n, rows) for f, n, rows in ledger} == {f: (1, EVENTS) for f in names}
            raw = query(
                warehouse,
                "SELECT source_file, source_row, record->>'event_id', count(*) OVER (PARTITION BY source_file, source_row)"
                " FROM raw_events",
            )
            assert len(raw) == FILES * EVENTS
            assert {(f, row, event_id, n) for f, row, event_id, n in raw} == {
                (f, row, event_ids(seq)[row - 1], 1) for f, seq in names.items() for row in range(1, EVENTS + 1)
            }
            expected_ids = sorted(e for seq in range(1, FILES + 1) for e in event_ids(seq))
            clean = [r[0] for r in query(warehouse, "SELECT event_id FROM clean_events ORDER BY event_id")]
            assert clean == expected_ids

            # The same file lands again under another name, and another file is renamed (both landed
            # atomically, as producers do, and seen by the same sensor tick).
            copied, renamed = paths[6], paths[7]
            copy = copied.with_name(f"{copied.stem}_again{copied.suffix}")
            staging = copy.with_name(f".{copy.name}.tmp")
            shutil.copy(copied, staging)
            os.replace(staging, copy)
            moved = renamed.with_name(f"{renamed.stem}_renamed{renamed.suffix}")
            os.replace(renamed, moved)
            wait_settled(platform, max(max(p.stat().st_mtime_ns, p.stat().st_ctime_ns) for p in (copy, moved)))

            # One more sensor request, for exactly the two new names. Its run refuses to drop the
            # renamed file's old name from the partition (raw stays reproducible), so raw and clean
            # are unchanged.
            runs = platform.runs()
            [request] = sensor_runs(runs)[len(requested) :]
            assert request.tags["dagster/run_key"] == sensor_run_key([identity(data, copy), identity(data, moved)])
            assert request.status == "FAILURE" and request.tags["dagster/will_retry"] == "false"
            old_name = renamed.relative_to(data / "landing").as_posix()
            failure = [e.message for e in platform.run_log(request.run_id) if e.kind == "ExecutionStepFailureEvent"]
            assert len(failure) == 1 and f"no longer in landing: ['{old_name}']" in failure[0], failure
            assert sorted(r[0] for r in query(warehouse, "SELECT event_id FROM clean_events")) == expected_ids
            assert query(warehouse, "SELECT count(*) FROM raw_events") == [(FILES * EVENTS,)]

            # The operator accepts the rename, as the refusal says: the day is rebuilt from landing.
            accepted = platform.launch_run(
                "raw_events", DAY.isoformat(), tags={"ml_platform/accept_missing_files": "true"}
            )
            wait_settled(platform, 0)
            runs = platform.runs()
            assert {r.run_id for r in runs if r.status == "FAILURE"} == {in_flight.run_id, request.run_id}
            assert next(r for r in runs if r.run_id == accepted).status == "SUCCESS"

            # Clean: still exactly the 300 events, once each (dedup by event_id).
            clean = query(warehouse, "SELECT event_id, count(*) OVER (PARTITION BY event_id) FROM clean_events")
            assert sorted(e for e, _ in clean) == expected_ids
            assert {n for _, n in clean} == {1}
            # Raw holds what landed: the copy's rows under both names, the renamed file's rows under
            # its new name only; one ledger row per file.
            landing = data / "landing"
            files_now = {f: EVENTS for f in names if f != old_name}
            files_now |= {copy.relative_to(landing).as_posix(): EVENTS, moved.relative_to(landing).as_posix(): EVENTS}
            assert dict(query(warehouse, "SELECT source_file, count(*) FROM raw_events GROUP BY 1")) == files_now
            ledger = query(
                warehouse, "SELECT source_file, count(*) FROM ingest_ledger WHERE source = 'events' GROUP BY 1"
            )
            assert dict(ledger) == {f: 1 for f in files_now}
            twice = query(
                warehouse, "SELECT record->>'event_id', count(*) FROM raw_events GROUP BY 1 HAVING count(*) > 1"
            )
            assert sorted(twice) == [(e, 2) for e in event_ids(7)]
        except BaseException:
            platform.save_log()
            raise


# --- how run monitoring tells a dead run from a live one (ml_platform.runs.launcher) -----------


def _stat_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_process_alive_only_for_the_run_s_own_live_process():
    now = time.time()
    assert process_alive(os.getpid(), now)
    reaped = subprocess.Popen(["true"])
    reaped.wait()
    assert not process_alive(reaped.pid, now)
    zombie = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 10
        while _stat_state(zombie.pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _stat_state(zombie.pid) == "Z"
        assert not process_alive(zombie.pid, now)  # exited, its parent has not reaped it yet
    finally:
        zombie.wait()
    younger = subprocess.Popen(["sleep", "30"])
    try:
        assert process_alive(younger.pid, time.time())
        # A process that started an hour after the run recorded its start is not the run's: the pid was reused.
        assert not process_alive(younger.pid, time.time() - 3600)
    finally:
        younger.kill()
        younger.wait()


@dg.asset
def finishes() -> None:
    pass


@dg.asset
def dies() -> None:
    os._exit(0)  # the process ends mid-step: no failure or end is recorded


def _run_then_die(instance_ref) -> None:
    instance = dg.DagsterInstance.from_ref(instance_ref)
    dg.materialize([finishes], instance=instance)
    dg.materialize([dies], instance=instance)


def test_health_check_fails_a_started_run_whose_process_is_gone_and_no_other(tmp_path: Path):
    launcher = {"module": "ml_platform.runs.launcher", "class": "LocalRunLauncher"}
    with dg.instance_for_test(temp_dir=str(tmp_path), overrides={"run_launcher": launcher}) as instance:
        child = multiprocessing.get_context("spawn").Process(target=_run_then_die, args=(instance.get_ref(),))
        child.start()
        child.join(120)
        assert child.exitcode == 0
        died, finished = instance.get_runs()  # newest first
        assert (finished.status, died.status) == (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.STARTED)
        health = instance.run_launcher.check_run_worker_health
        assert health(died).status.value == "FAILED"
        assert f"process {child.pid} is gone" in health(died).msg
        # Its process is gone too, but it recorded its end: not a failure.
        assert health(finished).status.value == "SUCCESS"
