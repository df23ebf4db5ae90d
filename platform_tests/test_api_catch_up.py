"""The weather source's catch-up sensor, in process against the local fake API: the days the daily
schedule missed are fetched in ranges of consecutive days, newest first; yesterday is left to the
schedule until its tick is half an hour old; a fetched, running or failed day is not asked again.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from conftest import Runner
from helpers import tick
from ml_platform.declarations.sources.weather import SPEC
from ml_platform.demo.weather_api import LOCATIONS, WeatherApiServer, observations
from ml_platform.ingestion.api import catch_up
from ml_platform.ingestion.api import client as api_client

SENSOR = "weather_catch_up_sensor"
RAW = dg.AssetKey("raw_weather")
START = "2026-02-20"
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


@pytest.fixture
def weather_api(monkeypatch):
    with WeatherApiServer() as server:
        monkeypatch.setenv(SPEC.base_url_env, server.url)
        yield server


@pytest.fixture
def clock(monkeypatch) -> list[dt.datetime]:
    """The sensor's clock (`now[0]`); the API client's rate-limit waits are skipped."""
    now = [at("2026-03-02 12:00")]
    monkeypatch.setattr(catch_up, "utc_now", lambda: now[0])
    monkeypatch.setattr(api_client, "_default_sleep", lambda seconds: None)
    return now


@pytest.fixture
def defs(weather_api, clock, data_dir, monkeypatch):
    monkeypatch.setenv("ML_PLATFORM_START_DATE", START)
    from ml_platform.definitions import build_definitions

    return build_definitions()


def fetched_days(instance: dg.DagsterInstance) -> dict[str, int]:
    """Partition -> rows of its latest raw_weather materialization."""
    rows = {}
    for record in instance.fetch_materializations(RAW, limit=1000).records:
        partition = record.event_log_entry.dagster_event.partition
        metadata = record.asset_materialization.metadata
        rows.setdefault(partition, metadata["dagster/partition_row_count"].value)
    return rows


def run(runner: Runner, request: dg.RunRequest, expect_success: bool = True) -> dg.ExecuteInProcessResult:
    """The requested run, as the daemon would launch it: its partition or its range, its tags."""
    return dg.materialize(
        [runner.defs.get_assets_def("raw_weather")],
        instance=runner.instance,
        resources=runner.defs.resources,
        partition_key=request.partition_key,
        tags=request.tags,
        raise_on_error=False,
    )


def test_the_latest_due_day_waits_for_the_schedule():
    # The schedule fetches yesterday at 00:15 UTC: until 00:45 that day is the schedule's.
    assert catch_up.last_due_day(SPEC, at("2026-03-02 00:10")) == day("2026-02-28")
    assert catch_up.last_due_day(SPEC, at("2026-03-02 00:44")) == day("2026-02-28")
    assert catch_up.last_due_day(SPEC, at("2026-03-02 00:45")) == day("2026-03-01")
    assert catch_up.last_due_day(SPEC, at("2026-03-02 23:59")) == day("2026-03-01")


def test_missing_days_go_in_runs_of_at_most_a_week_newest_first():
    days = [day("2026-01-01") + dt.timedelta(days=i) for i in range(10)] + [day("2026-01-15"), day("2026-01-17")]
    assert catch_up.chunks(days) == [
        (day("2026-01-17"), day("2026-01-17")),
        (day("2026-01-15"), day("2026-01-15")),
        (day("2026-01-04"), day("2026-01-10")),
        (day("2026-01-01"), day("2026-01-03")),
    ]
    assert catch_up.chunks([]) == []


def test_the_sensor_fetches_every_missed_day_once(defs, instance, data_dir, clock, weather_api):
    sensor = defs.resolve_sensor_def(SENSOR)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    runner = Runner(defs, instance, data_dir)
    # The schedule fetched 02-25 on its night.
    runner.run("raw_weather", partition="2026-02-25")

    # 02-20 … 03-01 are due at 03-02 12:00; all but 02-25 are missing.
    requests = tick(defs, instance, SENSOR).run_requests
    assert [(r.run_key, r.partition_key, r.tags.get(RANGE_START), r.tags.get(RANGE_END)) for r in requests] == [
        ("weather:catch-up:2026-02-26..2026-03-01", None, "2026-02-26", "2026-03-01"),
        ("weather:catch-up:2026-02-20..2026-02-24", None, "2026-02-20", "2026-02-24"),
    ]
    assert {r.tags["ml_platform/source"] for r in requests} == {"weather"}
    before = len(weather_api.requests)
    for request in requests:
        assert run(runner, request).success
    # One request per day and location, each day's 24 hours per location in its partition.
    assert len(weather_api.requests) - before == 9 * len(LOCATIONS)
    per_day = len(LOCATIONS) * 24
    assert fetched_days(instance) == {f"2026-02-{d}": per_day for d in (20, 21, 22, 23, 24, 25, 26, 27, 28)} | {
        "2026-03-01": per_day
    }
    assert sum(len(observations(loc, day("2026-03-01"))) for loc in LOCATIONS) == per_day
    assert tick(defs, instance, SENSOR).skip_message == (
        "every day from 2026-02-20 to 2026-03-01 is fetched, being fetched or failed"
    )

    # The next night the schedule did not run (the platform was down) and the API refuses 03-03
    # for good: the missed day 03-02 is due from 00:45, 03-03 a day later, fetched as one range.
    clock[0] = at("2026-03-03 00:44")
    assert tick(defs, instance, SENSOR).skip_message.startswith("every day from 2026-02-20 to 2026-03-01")
    clock[0] = at("2026-03-04 09:00")
    [request] = tick(defs, instance, SENSOR).run_requests
    assert (request.tags[RANGE_START], request.tags[RANGE_END]) == ("2026-03-02", "2026-03-03")
    weather_api.faults.fail(status=404, date="2026-03-03")
    assert not run(runner, request, expect_success=False).success
    # Failed days are the operator's: asking again on every tick would only add failed runs.
    assert tick(defs, instance, SENSOR).skip_message == (
        "every day from 2026-02-20 to 2026-03-03 is fetched, being fetched or failed"
    )


def test_a_day_being_fetched_is_not_requested_again(defs, instance, clock):
    clock[0] = at("2026-02-22 12:00")  # due: 02-20, 02-21
    [request] = tick(defs, instance, SENSOR).run_requests
    # The run exists (queued, not started): its partitions are planned, so in progress.
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection={RAW})
    instance.create_run_for_job(job_def=job, tags=request.tags, asset_selection=frozenset({RAW}))
    assert tick(defs, instance, SENSOR).skip_message == (
        "every day from 2026-02-20 to 2026-02-21 is fetched, being fetched or failed"
    )


def test_catch_up_runs_by_default_only_where_the_schedule_does(data_dir, monkeypatch):
    from ml_platform.definitions import build_definitions

    def status() -> dg.DefaultSensorStatus:
        return build_definitions().resolve_sensor_def(SENSOR).default_status

    assert status() == dg.DefaultSensorStatus.STOPPED  # no API configured
    monkeypatch.setenv(SPEC.base_url_env, "http://127.0.0.1:9")
    assert status() == dg.DefaultSensorStatus.RUNNING
    monkeypatch.setenv("ML_PLATFORM_API_CATCH_UP", "false")
    assert status() == dg.DefaultSensorStatus.STOPPED
