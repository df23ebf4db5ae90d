"""The REST API source end to end, in process: the weather spec against the local fake API.

Fetch -> stored responses -> raw records -> clean_weather in UTC, retries inside a run,
re-processing from stored responses with the API down, and the API key kept out of event logs.
Client sleeps are recorded instead of slept (backoff and rate limiting stay fast).
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest
from dagster._serdes import serialize_value

from helpers import edit_lake_table
from ml_platform.declarations.sources.weather import SPEC
from ml_platform.demo.weather_api import WeatherApiServer, observations
from ml_platform.ingestion.api import client as api_client
from ml_platform.ingestion.api.assets import REPROCESS_TAG, STEP_RETRY_POLICY

KEY = "wx-key-9d2b7c41-do-not-log"
URL_ENV, KEY_ENV = SPEC.base_url_env, SPEC.api_key_env
DAYS = ("2026-01-05", "2026-01-06")
LOCATIONS = ("berlin", "london", "new_york")
CLEAN_COLUMNS = (
    "location",
    "observed_at",
    "observation_date",
    "temperature_c",
    "humidity_pct",
    "precipitation_mm",
    "wind_speed_kmh",
    "source_file",
    "source_row",
    "landing_date",
    "schema_version",
)


@pytest.fixture
def weather_api(monkeypatch):
    with WeatherApiServer(api_key=KEY) as server:
        monkeypatch.setenv(URL_ENV, server.url)
        monkeypatch.setenv(KEY_ENV, KEY)
        yield server


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """The client's waits, recorded instead of slept; its clock moves only by them."""
    recorded: list[float] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        recorded.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(api_client, "_default_sleep", sleep)
    monkeypatch.setattr(api_client, "_default_clock", lambda: now[0])
    return recorded


@pytest.fixture
def defs(weather_api, sleeps, data_dir):
    """The code location, built after the API's URL and key are in the environment."""
    from ml_platform.definitions import build_definitions

    return build_definitions()


def expected_clean_rows() -> list[tuple]:
    rows = []
    for day in DAYS:
        for location in LOCATIONS:
            for record in observations(location, dt.date.fromisoformat(day)):
                utc = dt.datetime.fromisoformat(record["time"]).astimezone(dt.UTC).replace(tzinfo=None)
                rows.append(
                    (
                        location,
                        utc,
                        utc.date(),
                        record["temperature_c"],
                        record["humidity_pct"],
                        record["precipitation_mm"],
                        record["wind_speed_kmh"],
                    )
                )
    return sorted(rows)


def clean_rows(runner, columns=CLEAN_COLUMNS) -> list[tuple]:
    return runner.query(f"SELECT {', '.join(columns)} FROM clean_weather ORDER BY location, observed_at")


def materialize(runner, run_config=None, tags=None, expect_success=True):
    result = dg.materialize(
        [runner.defs.get_assets_def("raw_weather"), runner.defs.get_assets_def("clean_weather")],
        instance=runner.instance,
        resources=runner.defs.resources,
        run_config=run_config,
        tags={
            "dagster/asset_partition_range_start": DAYS[0],
            "dagster/asset_partition_range_end": DAYS[1],
            **(tags or {}),
        },
        raise_on_error=False,
    )
    assert result.success is expect_success, [
        e.message for e in result.all_events if e.event_type_value in ("STEP_FAILURE", "RUN_FAILURE")
    ]
    return result


def test_two_days_fetched_stored_and_cleaned_in_utc(runner, weather_api):
    result = runner.run("raw_weather", "clean_weather", range_=DAYS)

    # One request per day and location, each with the key.
    assert len(weather_api.requests) == 6 and all(r.had_api_key for r in weather_api.requests)
    responses = runner.query(
        "SELECT landing_date::VARCHAR, location, source_file, url, status, attempts FROM raw_weather_responses"
        " ORDER BY 1, 2"
    )
    assert [(r[0], r[1], r[2], r[4], r[5]) for r in responses] == [
        (day, loc, f"api:weather/{loc}/{day}", 200, 1) for day in DAYS for loc in LOCATIONS
    ]
    assert all(
        url.startswith(weather_api.url + "/v1/history?location=")
        for *_, url, _, _ in [(r[0], r[1], r[3], r[4], r[5]) for r in responses]
    )

    # Raw: one row per record, 24 per location and day, landing date = the requested day.
    assert runner.query("SELECT landing_date::VARCHAR, count(*) FROM raw_weather GROUP BY 1 ORDER BY 1") == [
        (DAYS[0], 72),
        (DAYS[1], 72),
    ]
    assert runner.query("SELECT DISTINCT schema_version, record->>'location' IS NOT NULL FROM raw_weather") == [
        ("v1", True)
    ]
    ledger = runner.query(
        "SELECT source_file, row_count, format FROM ingest_ledger WHERE source = 'weather' ORDER BY 1"
    )
    assert len(ledger) == 6 and {(r[1], r[2]) for r in ledger} == {(24, "json")}

    # Clean: exact counts per UTC day, every value as the API sent it, event time in UTC.
    assert runner.query("SELECT observation_date::VARCHAR, count(*) FROM clean_weather GROUP BY 1 ORDER BY 1") == [
        (DAYS[0], 72),
        (DAYS[1], 72),
    ]
    assert runner.query("SELECT count(*) FROM quarantine_weather") == [(0,)]
    got = sorted(r[:7] for r in clean_rows(runner))
    assert got == expected_clean_rows()
    # The API answers in local time: Berlin's first hour of the UTC day is 01:00+01:00,
    # New York's is 19:00-05:00 the day before; both are 00:00 UTC of the partition day.
    assert observations("berlin", dt.date(2026, 1, 5))[0]["time"] == "2026-01-05T01:00:00+01:00"
    assert observations("new_york", dt.date(2026, 1, 5))[0]["time"] == "2026-01-04T19:00:00-05:00"
    assert runner.query(
        "SELECT location, min(observed_at)::VARCHAR, max(observed_at)::VARCHAR FROM clean_weather"
        " WHERE observation_date = DATE '2026-01-05' GROUP BY 1 ORDER BY 1"
    ) == [(loc, "2026-01-05 00:00:00", "2026-01-05 23:00:00") for loc in LOCATIONS]

    raw_materialization = result.asset_materializations_for_node("raw_weather")[0]
    assert raw_materialization.metadata["dagster/row_count"].value == 144
    assert raw_materialization.metadata["mode"].text == "fetch"
    assert result.get_asset_check_evaluations()[0].passed


def test_api_key_never_reaches_event_logs_config_or_warehouse(runner, weather_api, instance):
    weather_api.faults.fail(503, times=1)  # a retry warning is logged too
    result = runner.run("raw_weather", "clean_weather", range_=DAYS)
    logs = instance.all_logs(result.run_id)
    assert any("retrying" in (entry.user_message or "") for entry in logs)
    for entry in logs:
        assert KEY not in serialize_value(entry)
    run = instance.get_run_by_id(result.run_id)
    assert KEY not in serialize_value(run)
    stored = runner.query("SELECT string_agg(url || body, '') FROM raw_weather_responses")[0][0]
    assert KEY not in stored and weather_api.url in stored


def test_transient_503s_are_retried_and_each_response_stored_once(runner, weather_api, sleeps):
    weather_api.faults.fail(503, times=2, location="london", date=DAYS[1])
    runner.run("raw_weather", "clean_weather", range_=DAYS)
    assert len(weather_api.requests) == 8
    assert [r.status for r in weather_api.requests if r.location == "london" and r.date == DAYS[1]] == [503, 503, 200]
    assert runner.query(
        "SELECT source_file, count(*), max(attempts) FROM raw_weather_responses"
        " GROUP BY 1 HAVING count(*) > 1 OR max(attempts) > 1"
    ) == [(f"api:weather/london/{DAYS[1]}", 1, 3)]
    assert runner.query("SELECT count(*) FROM raw_weather_responses") == [(6,)]
    assert runner.query("SELECT count(*) FROM clean_weather") == [(144,)]
    # Rate-limit spacing (0.2 s at 5/s) between request starts, and after each 503 a backoff
    # (base 1 s, doubled, jittered into [d/2, d]) that leaves the limiter nothing to add.
    spacing = [w for w in sleeps if w == pytest.approx(0.2)]
    backoffs = [w for w in sleeps if w != pytest.approx(0.2)]
    assert len(spacing) == 8 - 1 - 2
    assert len(backoffs) == 2 and 0.5 <= backoffs[0] <= 1.0 and 1.0 <= backoffs[1] <= 2.0


def test_rerun_replaces_the_window_instead_of_appending(runner, weather_api):
    runner.run("raw_weather", "clean_weather", range_=DAYS)
    runner.run("raw_weather", "clean_weather", range_=DAYS)
    assert runner.query("SELECT count(*) FROM raw_weather_responses") == [(6,)]
    assert runner.query("SELECT count(*) FROM raw_weather") == [(144,)]
    assert runner.query("SELECT count(*) FROM ingest_ledger WHERE source = 'weather'") == [(6,)]
    assert runner.query("SELECT count(*) FROM clean_weather") == [(144,)]


@pytest.mark.parametrize("how", ["config", "tag"])
def test_reprocess_from_stored_responses_with_the_api_down(runner, weather_api, how):
    runner.run("raw_weather", "clean_weather", range_=DAYS)
    before = clean_rows(runner)
    first_ingest = runner.query("SELECT DISTINCT ingested_at FROM raw_weather")
    weather_api.stop()
    requests_before = len(weather_api.requests)

    if how == "config":
        result = materialize(runner, run_config={"ops": {"raw_weather": {"config": {"reprocess": True}}}})
    else:
        result = materialize(runner, tags={REPROCESS_TAG: "true"})

    assert len(weather_api.requests) == requests_before
    assert clean_rows(runner) == before and len(before) == 144
    assert runner.query("SELECT DISTINCT ingested_at FROM raw_weather") != first_ingest  # really rebuilt
    raw_materialization = result.asset_materializations_for_node("raw_weather")[0]
    assert raw_materialization.metadata["mode"].text == "reprocess"
    assert raw_materialization.metadata["requests"].value == 0


def test_reprocess_without_stored_responses_fails_naming_them(runner, weather_api):
    result = materialize(
        runner, run_config={"ops": {"raw_weather": {"config": {"reprocess": True}}}}, expect_success=False
    )
    failures = [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures and "api:weather/berlin/2026-01-05" in str(
        [e.event_specific_data.error.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    )
    assert weather_api.requests == []


def test_raw_asset_shape(defs):
    raw = defs.get_assets_def("raw_weather")
    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey("raw_weather"))
    assert node.group_name == "raw" and node.pools == {"duckdb"}
    assert node.backfill_policy == dg.BackfillPolicy.single_run()
    assert raw.op.retry_policy == STEP_RETRY_POLICY
    assert STEP_RETRY_POLICY.max_retries == 3 and STEP_RETRY_POLICY.backoff == dg.Backoff.EXPONENTIAL
    assert graph.get(dg.AssetKey("clean_weather")).parent_keys == {dg.AssetKey("raw_weather")}
    # The URL and key are EnvVars: only the variable names are part of the definitions.
    resource = defs.resources["weather_api"]
    assert resource.base_url == dg.EnvVar(URL_ENV) and resource.api_key == dg.EnvVar(KEY_ENV)


def test_schedule_requests_yesterday_and_runs_only_when_configured(defs, monkeypatch, data_dir):
    repository = defs.get_repository_def()
    schedule = repository.get_schedule_def("weather_daily_schedule")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.execution_timezone == "UTC" and schedule.cron_schedule == "15 0 * * *"
    context = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 3, 2, 0, 15, tzinfo=dt.UTC), repository_def=repository
    )
    requests = list(schedule.evaluate_tick(context).run_requests)
    assert [r.partition_key for r in requests] == ["2026-03-01"]

    monkeypatch.delenv(URL_ENV)
    from ml_platform.definitions import build_definitions

    unconfigured = build_definitions()
    assert (
        unconfigured.get_repository_def().get_schedule_def("weather_daily_schedule").default_status
        == dg.DefaultScheduleStatus.STOPPED
    )


def test_responses_are_committed_before_the_transform(runner, weather_api):
    from ml_platform.ingestion.api import assets as api_source

    def broken_transform(*args, **kwargs):
        raise dg.Failure("transform broke", allow_retries=False)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(api_source, "load_raw_from_responses", broken_transform)
        runner.run("raw_weather", range_=DAYS, expect_success=False)
    assert runner.query("SELECT count(*) FROM raw_weather_responses") == [(6,)]
    assert runner.query("SELECT count(*) FROM information_schema.tables WHERE table_name = 'raw_weather'") == [(0,)]

    # The transform works again: re-process what was stored, without new requests.
    requests_before = len(weather_api.requests)
    materialize(runner, tags={REPROCESS_TAG: "true"})
    assert len(weather_api.requests) == requests_before
    assert runner.query("SELECT count(*) FROM clean_weather") == [(144,)]


def test_unreadable_stored_response_fails_and_leaves_raw_untouched(runner, weather_api):
    runner.run("raw_weather", "clean_weather", range_=DAYS)
    edit_lake_table(
        "raw_weather_responses",
        "UPDATE raw_weather_responses SET body = '{\"daily\": []}' WHERE source_file = 'api:weather/london/2026-01-06'",
    )
    result = materialize(runner, tags={REPROCESS_TAG: "true"}, expect_success=False)
    errors = str(
        [e.event_specific_data.error.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    )
    assert "api:weather/london/2026-01-06: no JSON list at $.hourly" in errors
    assert runner.query("SELECT count(*) FROM raw_weather") == [(144,)]
