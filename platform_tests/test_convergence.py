"""Automation converges whatever order runs happen in: the cases that used to leave a partition wrong.

Each test drives the automation conditions tick by tick (`helpers.Ticker`, which queues the
requested runs as the sensor does) and runs partitions by hand in the order that once went wrong:
- a view partition built, then a day it reads rewritten, both first seen on the same tick (Dagster's
  `since_last_handled` reset on the partition's own write and dropped the newer input: the demo
  week's device_health lost its 00:00 rows of a day);
- a partition whose run died twice, out of run retries (its request counted as handled): requested
  again after a backoff; one that failed on its own data is held until what it reads changes;
- a label partition written empty before it was final, then its clock's day lands (the demo week's
  device_failure_label kept 0 rows on a day); once final, a newer clock does not rebuild it.

The whole platform under crashes is `test_make_dev_chaos.py`; that every table reads only what it declares
is `test_declared_reads.py`.
"""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import pytest

from conftest import days, write_landing
from helpers import Ticker
from ml_platform import automation

HEALTH, CLEAN = dg.AssetKey("device_health"), dg.AssetKey("clean_telemetry")
LABEL = dg.AssetKey("device_failure_label")
MAINTENANCE = "record_id,device_id,event_time,event_type,component,downtime_minutes\n"
NOW = dt.datetime(2026, 11, 8, 6, tzinfo=dt.UTC)
# Three days just before today: the tests of failed runs evaluate at the runs' real end times, and
# automation keeps only the latest days current.
RECENT = tuple((dt.datetime.now(dt.UTC).date() - dt.timedelta(days=n)).isoformat() for n in (4, 3, 2))


def _reading(device: str, timestamp: str, temperature: float) -> str:
    return json.dumps(
        {
            "device_id": device,
            "timestamp": timestamp,
            "temperature": temperature,
            "vibration": 1.0,
            "pressure": 3.0,
            "rpm": 1500,
            "power_consumption": 10.0,
            "operating_hours": 1000.0,
            "maintenance_flag": False,
            "location": "berlin",
        }
    )


def land_readings(data_dir, landing: str, name: str, *readings: tuple[str, str, float]) -> None:
    write_landing(data_dir, "telemetry", landing, name, "".join(_reading(*r) + "\n" for r in readings))


def telemetry_days(data_dir, runner, first: str, last: str) -> None:
    """One reading per device-hour 10:00 and 23:30 of each day, landed on its day; raw and clean built."""
    for day in days(first, last):
        land_readings(data_dir, day, "t.jsonl", ("D1", f"{day}T10:00:00Z", 60.0), ("D1", f"{day}T23:30:00Z", 61.0))
    write_landing(data_dir, "maintenance", first, "m.csv", MAINTENANCE + f"r1,D1,{first}T12:00:00Z,maintenance,,5\n")
    runner.run("raw_telemetry", range_=(first, last))
    runner.run("raw_maintenance", partition=first)
    runner.run("clean_telemetry", range_=(first, last))
    runner.run("clean_maintenance", range_=(first, last))


@pytest.fixture
def health_ticker(defs, instance) -> Ticker:
    """The telemetry chain only (raw, clean, device_health, the failure label)."""
    graph = defs.resolve_asset_graph()
    kept = {"raw_telemetry", "clean_telemetry", "raw_maintenance", "clean_maintenance", "device_health", LABEL.path[0]}
    leave_out = tuple(k.to_user_string() for k in graph.get_all_asset_keys() if k.to_user_string() not in kept)
    return Ticker(defs, instance, leave_out=leave_out, now=NOW)


def _run_requested(runner, defs, requested: dict[dg.AssetKey, set]) -> None:
    """Run what a tick requested, upstream first, one partition per run (as the sensor's runs do)."""
    order = [k for k in _topological(defs) if k in requested]
    for key in order:
        for partition in sorted(requested[key]):
            runner.run(key.to_user_string(), partition=partition)


def _topological(defs: dg.Definitions) -> list[dg.AssetKey]:
    graph = defs.resolve_asset_graph()
    return [key for level in graph.toposorted_asset_keys_by_level for key in sorted(level)]


def _settle(ticker: Ticker, runner, defs, rounds: int = 8) -> None:
    """Tick and run what is requested until a tick requests nothing, as the daemon would."""
    for _ in range(rounds):
        requested = ticker.tick()
        if not requested:
            return
        _run_requested(runner, defs, requested)
    raise AssertionError(f"still requesting after {rounds} rounds: {requested}")


def test_a_partition_built_just_before_a_day_it_reads_is_rewritten_is_built_again(data_dir, runner, instance, defs):
    ticker = Ticker(
        defs, instance, leave_out=_all_but(defs, "raw_telemetry", "clean_telemetry", "device_health"), now=NOW
    )
    telemetry_days(data_dir, runner, "2026-11-02", "2026-11-04")
    _settle(ticker, runner, defs)

    # A reading of 11-03 lands on 11-03: the clean days that landing day can hold are requested,
    # then device_health 11-03 and 11-04 (the 24 hours before 11-04's first hours reach into 11-03).
    land_readings(data_dir, "2026-11-03", "more.jsonl", ("D1", "2026-11-03T12:30:00Z", 70.0))
    runner.run("raw_telemetry", partition="2026-11-03")
    cleaned = ticker.tick()
    assert set(cleaned) == {CLEAN} and "2026-11-03" in cleaned[CLEAN]
    _run_requested(runner, defs, cleaned)
    assert ticker.tick()[HEALTH] >= {"2026-11-03", "2026-11-04"}

    # device_health 11-04's run goes first; right after it, the last hour of 11-03 lands on 11-04
    # and the clean days are rebuilt (11-03 with that hour): all first seen on the same tick.
    runner.run("device_health", partition="2026-11-04")
    land_readings(data_dir, "2026-11-04", "late.jsonl", ("D1", "2026-11-03T23:45:00Z", 90.0))
    runner.run("raw_telemetry", partition="2026-11-04")
    runner.run("clean_telemetry", range_=("2026-11-03", "2026-11-05"))
    requested = ticker.tick()
    # 11-04 read the older 11-03: it is requested again (11-03 is still in its first run).
    assert "2026-11-04" in requested[HEALTH] and "2026-11-03" not in requested[HEALTH]
    runner.run("device_health", partition="2026-11-04")
    # Its 00:00 row now holds the late 23:45 reading: 61 and 90 in the hour before midnight.
    assert runner.query(
        "SELECT readings_1h, temperature_max_1h FROM device_health WHERE as_of = TIMESTAMP '2026-11-04 00:00:00'"
    ) == [(2, 90.0)]
    assert "2026-11-04" not in ticker.tick().get(HEALTH, set())


def _failed_attempt(instance, defs, key: dg.AssetKey, partition: str, **tags) -> dg.DagsterRun:
    """A run of the partition that ended failed without writing it, as run monitoring records a
    run whose process died (or, with `dagster/failure_reason`, a step failure)."""
    run = instance.create_run_for_job(
        job_def=defs.resolve_implicit_global_asset_job_def(),
        asset_selection={key},
        tags={"dagster/partition": partition, **tags},
        status=dg.DagsterRunStatus.STARTED,
    )
    instance.report_run_failed(run, "the run's process is gone without recording the run's end")
    return instance.get_run_by_id(run.run_id)


def _ended(instance, run: dg.DagsterRun) -> dt.datetime:
    return dt.datetime.fromtimestamp(instance.get_run_record_by_id(run.run_id).end_time, dt.UTC)


def test_a_run_killed_twice_is_requested_again_after_its_backoff(data_dir, runner, instance, defs, monkeypatch):
    monkeypatch.setenv("ML_PLATFORM_RETRY_BACKOFF", "20")
    telemetry_days(data_dir, runner, *RECENT[::2])
    runner.run("device_health", range_=RECENT[::2])
    runner.run("clean_telemetry", partition=RECENT[2])  # device_health's last day is stale now
    first = _failed_attempt(instance, defs, HEALTH, RECENT[2], **{"dagster/will_retry": "true"})

    def requested(at: dt.datetime) -> set:
        ticker = Ticker(defs, instance, leave_out=_all_but(defs, "device_health"), now=at)
        # Whether the failed partition is requested (later days, never built here, may be too).
        return RECENT[2] in ticker.tick().get(HEALTH, set())

    # Dagster's own run retry is about to start: automation leaves it that.
    assert not requested(_ended(instance, first) + dt.timedelta(seconds=5))
    # The retry dies too, and run retries are used up.
    retry = _failed_attempt(
        instance, defs, HEALTH, RECENT[2], **{"dagster/will_retry": "false", "dagster/parent_run_id": first.run_id}
    )
    ended = _ended(instance, retry)
    # Two attempts failed in a row: 20 s x 2 after the last.
    assert automation.backoff_seconds(2) == 40
    assert not requested(ended + dt.timedelta(seconds=39))
    assert requested(ended + dt.timedelta(seconds=41))


def test_a_partition_that_failed_on_its_own_data_is_held_until_what_it_reads_changes(data_dir, runner, instance, defs):
    telemetry_days(data_dir, runner, *RECENT[::2])
    runner.run("device_health", range_=RECENT[::2])
    runner.run("clean_telemetry", partition=RECENT[2])
    # A step failure that is not the warehouse's lock: the partition's own data or SQL.
    failed = _failed_attempt(instance, defs, HEALTH, RECENT[2], **{"dagster/failure_reason": "STEP_FAILURE"})
    assert not automation.transient_failure(instance, failed)
    later = _ended(instance, failed) + dt.timedelta(hours=2)
    ticker = Ticker(defs, instance, leave_out=_all_but(defs, "device_health"), now=later)
    assert RECENT[2] not in ticker.tick().get(HEALTH, set())
    # What it reads changes: it is worth another attempt.
    runner.run("clean_telemetry", partition=RECENT[2])
    assert RECENT[2] in ticker.tick()[HEALTH]


def test_a_raw_partition_refused_on_its_own_files_is_not_retried(data_dir, runner, instance, defs):
    """A raw run that refuses (a landed file moved away) failed on its data: automation, which only
    retries raw attempts that died, leaves it to the operator (docs/data-flow.md)."""
    path = write_landing(data_dir, "telemetry", "2026-11-02", "t.jsonl", _reading("D1", "2026-11-02T10:00:00Z", 60.0))
    runner.run("raw_telemetry", partition="2026-11-02")
    path.unlink()
    refused = runner.run("raw_telemetry", partition="2026-11-02", expect_success=False)
    run = instance.get_run_by_id(refused.run_id)
    assert not automation.transient_failure(instance, run)
    later = dt.datetime.fromtimestamp(instance.get_run_record_by_id(run.run_id).end_time, dt.UTC)
    ticker = Ticker(defs, instance, leave_out=_all_but(defs, "raw_telemetry"), now=later + dt.timedelta(hours=2))
    assert ticker.tick() == {}


def test_a_label_written_before_it_was_final_is_written_again_when_its_clock_lands(
    data_dir, runner, health_ticker, instance
):
    telemetry_days(data_dir, runner, "2026-11-02", "2026-11-03")
    # Written before its outcome settled (final once data of 11-02 + 4 has landed): empty.
    runner.run("device_failure_label", partition="2026-11-02")
    assert runner.query("SELECT count(*) FROM device_failure_label") == [(0,)]
    health_ticker.tick()
    health_ticker.cancel_submitted()
    # Telemetry of 11-06 lands: 11-02 is final now. The label is requested again; 11-03 (never
    # written, its clock now here) too.
    land_readings(data_dir, "2026-11-06", "t.jsonl", ("D1", "2026-11-06T10:00:00Z", 60.0))
    runner.run("raw_telemetry", partition="2026-11-06")
    runner.run("clean_telemetry", partition="2026-11-06")
    assert health_ticker.tick()[LABEL] == {"2026-11-02"}
    runner.run("device_failure_label", partition="2026-11-02")
    assert runner.query("SELECT count(*) FROM device_failure_label WHERE hour_date = DATE '2026-11-02'") == [(2,)]
    # Final now: a newer clock day does not rebuild it (a label is not rewritten by every day that lands).
    land_readings(data_dir, "2026-11-07", "t.jsonl", ("D1", "2026-11-07T10:00:00Z", 60.0))
    runner.run("raw_telemetry", partition="2026-11-07")
    runner.run("clean_telemetry", partition="2026-11-07")
    assert "2026-11-02" not in health_ticker.tick().get(LABEL, set())


def _all_but(defs: dg.Definitions, *names: str) -> tuple[str, ...]:
    graph = defs.resolve_asset_graph()
    return tuple(k.to_user_string() for k in graph.get_all_asset_keys() if k.to_user_string() not in names)


def test_a_training_set_is_not_built_before_its_label_exists(data_dir, runner, instance, defs):
    """Its feature views exist, its label does not (a demo week never matures churn): nothing to
    build from. What a set reads of its views is what its last build recorded; before one, only the
    label can start it."""
    telemetry_days(data_dir, runner, *RECENT[::2])
    runner.run("device_health", range_=RECENT[::2])
    training_set = "device_failure_training_set"
    ticker = Ticker(defs, instance, leave_out=_all_but(defs, training_set))
    assert ticker.tick() == {}
    runner.run("device_failure_label", partition=RECENT[0])
    assert ticker.tick() == {dg.AssetKey(training_set): {None}}


def test_a_stale_partition_waits_while_any_unfinished_run_will_write_it(data_dir, runner, instance, defs):
    """A run queued before a restart of dagster dev, and a newer run of the same partition that has
    finished: Dagster's `in_progress` sees only the newer one. Requesting a third run would overlap
    the queued one; the partition waits until no run of it is unfinished."""
    telemetry_days(data_dir, runner, *RECENT[::2])
    queued = instance.create_run_for_job(
        job_def=defs.resolve_implicit_global_asset_job_def(),
        asset_selection={HEALTH},
        tags={"dagster/partition": RECENT[2]},
        status=dg.DagsterRunStatus.STARTED,
    )
    runner.run("device_health", range_=RECENT[::2])  # planned after the queued run, and finished
    runner.run("clean_telemetry", partition=RECENT[2])  # device_health's last day is stale now
    ticker = Ticker(defs, instance, leave_out=_all_but(defs, "device_health"))
    assert RECENT[2] not in ticker.tick().get(HEALTH, set())
    instance.report_run_canceled(instance.get_run_by_id(queued.run_id))
    assert RECENT[2] in ticker.tick()[HEALTH]


def test_a_write_left_without_a_check_result_is_built_again(data_dir, runner, instance, defs):
    """Two overlapping runs can record their check results in the other order than their writes
    (and a run can die between the two): the newest write has no verdict, and what reads it would
    wait for one forever. The partition is built again; with its verdict it is left alone."""
    telemetry_days(data_dir, runner, *RECENT[::2])
    runner.run("device_health", range_=RECENT[::2])
    ticker = Ticker(defs, instance, leave_out=_all_but(defs, "device_health"))
    # (Later days, never built here, may be requested: only RECENT[1] is looked at.)
    assert RECENT[1] not in ticker.tick().get(HEALTH, set())
    # A newer write of RECENT[1] without its checks' results.
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=HEALTH, partition=RECENT[1]))
    assert RECENT[1] in ticker.tick()[HEALTH]
    runner.run("device_health", partition=RECENT[1])
    assert RECENT[1] not in ticker.tick().get(HEALTH, set())
