"""The weather feature view against the local fake weather API: each entity row gets the latest
observation of its location that the daily pull had made available at its time (01:00 UTC the
day after the observation day), within the 26 h TTL; unknown locations get nulls."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from ml_platform.declarations.sources.weather import SPEC
from ml_platform.demo.weather_api import WeatherApiServer, observations
from ml_platform.ingestion.api import client as api_client
from ml_platform.training import get_training_set
from ml_platform.warehouse import connect

KEY = "wx-test-key"
DAYS = ("2026-01-04", "2026-01-06")
FEATURES = ("temperature_c", "humidity_pct", "precipitation_mm", "wind_speed_kmh")


@pytest.fixture
def weather_api(monkeypatch):
    with WeatherApiServer(api_key=KEY) as server:
        monkeypatch.setenv(SPEC.base_url_env, server.url)
        monkeypatch.setenv(SPEC.api_key_env, KEY)
        yield server


@pytest.fixture
def defs(weather_api, data_dir, monkeypatch):
    """The code location, built once the API's URL and key are set; the client's rate-limit waits
    are skipped (as in test_api_source)."""
    monkeypatch.setattr(api_client, "_default_sleep", lambda seconds: None)
    from ml_platform.definitions import build_definitions

    return build_definitions()


def observed(location: str, day: str, hour: int) -> tuple:
    """The fake API's observation of `location` at `hour`:00 UTC of `day`."""
    record = observations(location, dt.date.fromisoformat(day))[hour]
    return tuple(record[f] for f in FEATURES)


NOTHING = (None,) * len(FEATURES)


def test_latest_known_observation_at_each_time(runner, data_dir):
    runner.run("raw_weather", "clean_weather", range_=DAYS)
    runner.run("weather", range_=DAYS)

    # Every observation of day D is available from D+1 01:00 (pulled at 00:15 the day after).
    assert runner.query(
        "SELECT strftime(observation_date, '%m-%d'), count(*), count(DISTINCT location), min(observed_at)::VARCHAR,"
        " max(observed_at)::VARCHAR, string_agg(DISTINCT created_at::VARCHAR, ',') FROM weather GROUP BY 1 ORDER BY 1"
    ) == [
        ("01-04", 72, 3, "2026-01-04 00:00:00", "2026-01-04 23:00:00", "2026-01-05 01:00:00"),
        ("01-05", 72, 3, "2026-01-05 00:00:00", "2026-01-05 23:00:00", "2026-01-06 01:00:00"),
        ("01-06", 72, 3, "2026-01-06 00:00:00", "2026-01-06 23:00:00", "2026-01-07 01:00:00"),
    ]

    rows = [
        ("berlin", "2026-01-05 00:30:00"),
        ("berlin", "2026-01-06 00:59:59"),
        ("berlin", "2026-01-06 01:00:00"),
        ("london", "2026-01-06 10:00:00"),
        ("london", "2026-01-06 10:30:00"),
        ("new_york", "2026-01-07 01:00:00"),
        ("new_york", "2026-01-08 01:00:00"),
        ("new_york", "2026-01-08 01:00:01"),
        ("paris", "2026-01-06 12:00:00"),
    ]
    entities = pd.DataFrame(
        {
            "location": [location for location, _ in rows],
            "event_timestamp": pd.to_datetime([t for _, t in rows]),
            "label": range(len(rows)),
        }
    )
    con = connect(data_dir / "warehouse.duckdb", read_only=True)
    try:
        training = get_training_set(con, entities, [f"weather:{f}" for f in FEATURES]).fetchall()
    finally:
        con.close()
    assert [row[3:] for row in training] == [
        # Before 01-04's pull nothing is known: observations of that very night do not leak in.
        NOTHING,
        # A second before 01-05's pull, 01-05 (observed before this time) is still unknown:
        # the newest known observation is 01-04 23:00, 25 h 59 min 59 s old.
        observed("berlin", "2026-01-04", 23),
        # At the pull's time 01-05 is known: its last hour, 23:00.
        observed("berlin", "2026-01-05", 23),
        # At an observation time of 01-06 and between two: that day is not known yet, the newest
        # known observation (at or before the entity's time) is 01-05 23:00.
        observed("london", "2026-01-05", 23),
        observed("london", "2026-01-05", 23),
        observed("new_york", "2026-01-06", 23),
        # 01-07 was never pulled: 01-06 23:00 is exactly 26 h old, still within the TTL ...
        observed("new_york", "2026-01-06", 23),
        # ... and older than it a second later: nulls rather than stale weather.
        NOTHING,
        # A location the API does not serve: the row stays, without weather.
        NOTHING,
    ]
    # Every entity row comes back once, in order, with its own columns.
    assert [(row[0], row[1], row[2]) for row in training] == [
        (location, dt.datetime.fromisoformat(t), i) for i, (location, t) in enumerate(rows)
    ]
