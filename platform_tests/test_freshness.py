"""Freshness: the cadence each source declares, Dagster's freshness policies built from it, and the
raw assets' `landing_freshness` check, evaluated in runs and, between runs, by its sensor.

Real landing folders, a real Dagster instance, a real (local) weather API for the API source. The
sensor's clock is moved forward instead of waiting: a file's arrival is the later of its mtime
and ctime, and ctime cannot be set back, so the first file is dated ahead (`T0`) and the clock
is moved past it. The sensor's events are recorded as the sensor daemon records them
(`instance.report_runless_asset_event`, dagster/_daemon/sensor.py).
"""

from __future__ import annotations

import datetime as dt
import os

import dagster as dg
import pytest
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import create_test_daemon_workspace_context, freeze_time
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.freshness import FreshnessDaemon

from conftest import write_landing
from helpers import tick
from ml_platform.checks.landing_freshness import SENSOR_NAME, landing_freshness_sensor
from ml_platform.contracts.freshness import DAILY, FreshnessRule, derived_rule
from ml_platform.declarations import discover_specs

HOUR = dt.timedelta(hours=1)
# Ahead of any real clock, so the file's mtime (not the ctime the kernel sets to now) is its arrival.
T0 = dt.datetime(2031, 3, 2, 9, 0, tzinfo=dt.UTC)
EVENTS_CSV = "event_id,user_id,event_type,event_time,product_id,amount\ne1,u1,page_view,2026-11-20T10:00:00Z,,\n"


def events_check() -> dg.AssetCheckKey:
    return dg.AssetCheckKey(dg.AssetKey("raw_events"), "landing_freshness")


def land(data_dir, day: str, name: str, at: dt.datetime) -> None:
    path = write_landing(data_dir, "events", day, name, EVENTS_CSV)
    os.utime(path, (at.timestamp(), at.timestamp()))


class Sensor:
    """The freshness sensor at a clock the test sets, its ticks recorded like the daemon does."""

    def __init__(self, instance: dg.DagsterInstance):
        self.instance, self.now = instance, T0
        self.sensor = landing_freshness_sensor(discover_specs(), clock=lambda: self.now)

    def tick(self) -> list[dg.AssetCheckEvaluation]:
        data = self.sensor.evaluate_tick(dg.build_sensor_context(instance=self.instance))
        for event in data.asset_events:
            self.instance.report_runless_asset_event(event)
        return list(data.asset_events)


@pytest.fixture
def sensor(instance, data_dir) -> Sensor:
    return Sensor(instance)


def evaluation_values(evaluation: dg.AssetCheckEvaluation) -> dict:
    return {k: v.value for k, v in evaluation.metadata.items()}


def history(instance, key: dg.AssetCheckKey) -> list:
    return instance.event_log_storage.get_asset_check_execution_history(key, limit=100)


def test_the_policies_follow_each_sources_cadence(defs):
    graph = defs.resolve_asset_graph()
    hourly = FreshnessRule(warn_after=3 * HOUR, error_after=12 * HOUR)
    polled = FreshnessRule(warn_after=6 * HOUR, error_after=26 * HOUR)
    rules = {s: DAILY for s in ("events", "maintenance", "products", "users", "weather")}
    live = FreshnessRule(warn_after=dt.timedelta(minutes=10), error_after=HOUR)
    rules.update(telemetry=hourly, transactions=polled, stream_events=live)
    expected = {f"{layer}_{s}": rule for s, rule in rules.items() for layer in ("raw", "clean")}
    # Curated tables are due as their inputs' sources land; labels mature once a day.
    expected.update(
        device_health=hourly,
        user_transactions=polled,
        user_activity=DAILY,
        user_daily_features=DAILY,
        weather=DAILY,
        product_features=DAILY,
        churn_label=DAILY,
        device_failure_label=DAILY,
    )
    policies = {}
    for key in graph.get_all_asset_keys():
        policy = graph.get(key).freshness_policy
        if policy is not None:
            windows = (policy.warn_window.to_timedelta(), policy.fail_window.to_timedelta())
            policies[key.to_user_string()] = FreshnessRule(warn_after=windows[0], error_after=windows[1])
    assert policies == expected  # training sets, models and serving have no cadence of their own
    assert FreshnessRule(warn_after=26 * HOUR, error_after=50 * HOUR) == DAILY


def test_a_derived_rule_is_the_most_patient_input_and_daily_without_one():
    hourly = FreshnessRule(warn_after=HOUR, error_after=2 * HOUR)
    assert derived_rule(["a", "b"], {"a": hourly, "b": DAILY}) == DAILY
    assert derived_rule(["a"], {"a": hourly}) == hourly
    assert derived_rule(["unknown"], {"a": hourly}) == DAILY
    with pytest.raises(ValueError, match="warn_after < error_after"):
        FreshnessRule(warn_after=2 * HOUR, error_after=HOUR)


def test_a_source_that_stops_landing_goes_warn_then_error_and_passes_once_a_file_lands(sensor, data_dir, instance):
    land(data_dir, "2031-03-01", "old.csv", T0 - 5 * HOUR)
    land(data_dir, "2031-03-02", "part-1.csv", T0)
    newest = "file landing/events/2031-03-02/part-1.csv"

    sensor.now = T0 + HOUR
    [fresh] = sensor.tick()  # only events has landed: the other sources stay silent
    assert (fresh.asset_key, fresh.check_name, fresh.passed) == (dg.AssetKey("raw_events"), "landing_freshness", True)
    assert fresh.description == (
        f"events: newest data ({newest}) landed 1.0 h ago, at 2031-03-02 09:00:00 UTC; within 26.0 h."
    )
    assert evaluation_values(fresh) == {
        "lag_hours": 1.0,
        "warn_after_hours": 26.0,
        "error_after_hours": 50.0,
        "landed_at": T0.timestamp(),
        "newest": newest,
    }

    # Nothing new: no evaluation, however often it ticks, even though the lag grows.
    sensor.now = T0 + 25 * HOUR
    assert sensor.tick() == []
    assert sensor.tick() == []

    sensor.now = T0 + 27 * HOUR
    [warn] = sensor.tick()
    assert (warn.passed, warn.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert warn.description == (
        f"events: newest data ({newest}) landed 27.0 h ago, at 2031-03-02 09:00:00 UTC; WARN: older than 26.0 h."
    )
    assert evaluation_values(warn)["lag_hours"] == 27.0
    sensor.now = T0 + 49 * HOUR
    assert sensor.tick() == []

    sensor.now = T0 + 50 * HOUR
    [error] = sensor.tick()
    assert (error.passed, error.severity) == (False, dg.AssetCheckSeverity.ERROR)
    assert error.description == (
        f"events: newest data ({newest}) landed 50.0 h ago, at 2031-03-02 09:00:00 UTC; ERROR: older than 50.0 h."
    )
    assert sensor.tick() == []

    land(data_dir, "2031-03-04", "part-2.csv", T0 + 50 * HOUR)
    sensor.now = T0 + 50.5 * HOUR
    [again] = sensor.tick()
    assert again.passed
    assert again.description == (
        "events: newest data (file landing/events/2031-03-04/part-2.csv) landed 0.5 h ago, at 2031-03-04 11:00:00 UTC;"
        " within 26.0 h."
    )
    assert sensor.tick() == []

    # The UI's history of the check: the four reported evaluations, newest first, recorded without a run.
    records = history(instance, events_check())
    assert [(r.run_id, r.status.value) for r in records] == [
        ("", "SUCCEEDED"),
        ("", "FAILED"),
        ("", "FAILED"),
        ("", "SUCCEEDED"),
    ]
    latest = instance.get_latest_asset_check_evaluation_record(events_check())
    assert latest.event.dagster_event.event_specific_data.description == again.description


def test_a_file_in_an_older_folder_does_not_hide_the_newest_day(sensor, data_dir):
    land(data_dir, "2031-03-02", "today.csv", T0)
    land(data_dir, "2031-02-01", "backfill.csv", T0 - 10 * HOUR)  # an older landing day
    write_landing(data_dir, "events", "2031-03-03", "_in-flight.csv", EVENTS_CSV)  # not landed yet
    sensor.now = T0 + 2 * HOUR
    [fresh] = sensor.tick()
    assert evaluation_values(fresh)["newest"] == "file landing/events/2031-03-02/today.csv"


def test_triggered_raw_runs_leave_the_check_to_its_sensor(defs, instance, data_dir):
    write_landing(data_dir, "events", "2026-11-20", "part-1.csv", EVENTS_CSV)
    [request] = tick(defs, instance, "events_landing_sensor").run_requests
    assert sorted(k.name for k in request.asset_check_keys) == ["files", "schema"]
    schedule = defs.resolve_schedule_def("weather_daily_schedule")
    assert [n.name for n in defs.resolve_job_def(schedule.job_name).graph.node_defs] == ["raw_weather"]

    # The run, as the daemon launches it: its own checks only, so no planned landing_freshness.
    job = defs.resolve_implicit_global_asset_job_def()
    subset = job.get_subset(
        asset_selection=set(request.asset_selection), asset_check_selection=set(request.asset_check_keys)
    )
    result = subset.execute_in_process(instance=instance, partition_key=request.partition_key)
    assert sorted(e.check_name for e in result.get_asset_check_evaluations()) == ["files", "schema"]
    assert history(instance, events_check()) == []

    # The defined sensor (real clock) reports the landing, once.
    [fresh] = tick(defs, instance, SENSOR_NAME).asset_events
    assert fresh.passed and evaluation_values(fresh)["newest"] == "file landing/events/2026-11-20/part-1.csv"
    assert evaluation_values(fresh)["lag_hours"] < 0.1
    instance.report_runless_asset_event(fresh)
    assert list(tick(defs, instance, SENSOR_NAME).asset_events) == []


def test_the_check_runs_on_its_own_and_the_sensor_does_not_repeat_it(defs, instance, data_dir):
    write_landing(data_dir, "events", "2026-11-20", "part-1.csv", EVENTS_CSV)
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection=set(), asset_check_selection={events_check()}
    )
    result = job.execute_in_process(instance=instance)
    [run_check] = result.get_asset_check_evaluations()
    assert (run_check.check_name, run_check.passed, run_check.partition) == ("landing_freshness", True, None)
    assert evaluation_values(run_check)["newest"] == "file landing/events/2026-11-20/part-1.csv"

    # The sensor reads the run's evaluation back and has nothing to add.
    quiet = tick(defs, instance, SENSOR_NAME)
    assert list(quiet.asset_events) == []
    assert quiet.skip_message.startswith("landing freshness unchanged for events, maintenance")
    assert [(r.run_id, r.status.value) for r in history(instance, events_check())] == [(result.run_id, "SUCCEEDED")]


def test_an_api_source_is_as_fresh_as_its_last_extraction(monkeypatch, sensor, instance, data_dir):
    from ml_platform.definitions import build_definitions
    from ml_platform.demo.weather_api import WeatherApiServer

    sensor.now = dt.datetime.now(dt.UTC)
    assert sensor.tick() == []  # never extracted: no verdict (Dagster's own freshness is UNKNOWN then too)
    with WeatherApiServer() as api:
        monkeypatch.setenv("ML_PLATFORM_WEATHER_API_URL", api.url)
        job = build_definitions().resolve_implicit_global_asset_job_def()
        # Launched by hand, so the check runs with it (a triggered run leaves it to the sensor).
        result = job.execute_in_process(
            instance=instance, partition_key="2026-11-25", asset_selection=[dg.AssetKey("raw_weather")]
        )
    materialized = instance.get_latest_materialization_event(dg.AssetKey("raw_weather")).timestamp
    landed = dt.datetime.fromtimestamp(materialized, dt.UTC)
    batch = f"raw_weather partition 2026-11-25 (run {result.run_id[:8]})"
    [in_run] = [e for e in result.get_asset_check_evaluations() if e.check_name == "landing_freshness"]
    assert in_run.passed
    assert (evaluation_values(in_run)["newest"], evaluation_values(in_run)["landed_at"]) == (batch, landed.timestamp())

    sensor.now = landed + 27 * HOUR
    [warn] = sensor.tick()
    assert (warn.asset_key, warn.passed, warn.severity) == (
        dg.AssetKey("raw_weather"),
        False,
        dg.AssetCheckSeverity.WARN,
    )
    assert warn.description == (
        f"weather: newest data ({batch}) landed 27.0 h ago, at {landed:%Y-%m-%d %H:%M:%S} UTC; WARN: older than 26.0 h."
    )


def test_dagsters_freshness_daemon_shows_an_overdue_raw_asset(runner, instance, data_dir):
    """Dagster's own daemon, on the platform's code location: the raw asset is fresh after its run,
    WARN 27 hours later and FAIL past 50 (the UI's freshness states); assets without a policy are not
    judged."""
    write_landing(data_dir, "events", "2026-11-20", "part-1.csv", EVENTS_CSV)
    runner.run("raw_events", partition="2026-11-20")
    materialized = dt.datetime.fromtimestamp(
        instance.get_latest_materialization_event(dg.AssetKey("raw_events")).timestamp, dt.UTC
    )
    code_location = InProcessWorkspaceLoadTarget(
        InProcessCodeLocationOrigin(
            LoadableTargetOrigin(module_name="ml_platform.definitions", attribute="defs"), location_name="ml_platform"
        )
    )
    keys = [dg.AssetKey(name) for name in ("raw_events", "clean_events", "churn_model")]
    states = []
    with create_test_daemon_workspace_context(code_location, instance) as workspace:
        for hours in (1, 27, 51):
            with freeze_time(materialized + dt.timedelta(hours=hours)):
                list(FreshnessDaemon().run_iteration(workspace))
            records = instance.get_freshness_state_records(keys)
            states.append([records[key].freshness_state for key in keys])
    assert states == [
        [FreshnessState.PASS, FreshnessState.UNKNOWN, FreshnessState.NOT_APPLICABLE],
        [FreshnessState.WARN, FreshnessState.UNKNOWN, FreshnessState.NOT_APPLICABLE],
        [FreshnessState.FAIL, FreshnessState.UNKNOWN, FreshnessState.NOT_APPLICABLE],
    ]
    assert instance.freshness_enabled  # dagster.yaml leaves Dagster's default: the daemon runs under `dagster dev`
