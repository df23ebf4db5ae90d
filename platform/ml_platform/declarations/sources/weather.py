"""Weather: hourly observations per location, pulled daily from a weather history REST API.

The API answers `GET <ML_PLATFORM_WEATHER_API_URL>/v1/history?location=<id>&date=<YYYY-MM-DD>`
with the UTC day's hourly records under `hourly`, timestamped in local time with an offset.
For demos and tests, `python -m ml_platform.demo.weather_api --port 8765` serves a fake one.
"""

from __future__ import annotations

import ibis.expr.datatypes as dt
from pandera.ibis import Field

from ml_platform.contracts.lineage import LineageColumns, UtcTimestamp
from ml_platform.ingestion.api import ApiSourceSpec


class CleanWeather(LineageColumns):
    """One observation per location and hour, in UTC, with physically plausible ranges."""

    location: dt.String = Field(nullable=False, description="Location id the observation is for.")
    observed_at: UtcTimestamp = Field(description="Observation time (event time), UTC.")
    observation_date: dt.Date = Field(description="UTC date of observed_at: the partition.")
    temperature_c: dt.Float64 = Field(nullable=True, ge=-90.0, le=60.0, description="Air temperature, °C (-90–60).")
    humidity_pct: dt.Float64 = Field(nullable=True, ge=0.0, le=100.0, description="Relative humidity, % (0–100).")
    precipitation_mm: dt.Float64 = Field(nullable=True, ge=0.0, description="Precipitation in the hour, mm.")
    wind_speed_kmh: dt.Float64 = Field(nullable=True, ge=0.0, description="Wind speed, km/h.")

    class Config:
        strict = True


SPEC = ApiSourceSpec(
    name="weather",
    description="Hourly weather observations (temperature, humidity, precipitation, wind) per location.",
    owner="team:forecasting",
    contract=CleanWeather,
    key_columns=("location", "observed_at"),
    event_time_column="observed_at",
    partition_column="observation_date",
    late_tolerance_days=0,
    # The API calls event time `time`; the platform adds `location` (the request's) to each record.
    aliases={"observed_at": ("time",)},
    schema_versions={
        "v1": ("location", "time", "temperature_c", "humidity_pct", "precipitation_mm", "wind_speed_kmh"),
    },
    schema_policy="add_only",
    base_url_env="ML_PLATFORM_WEATHER_API_URL",
    api_key_env="ML_PLATFORM_WEATHER_API_KEY",
    path="/v1/history",
    locations=("berlin", "london", "new_york"),
    records_path="$.hourly",
    requests_per_second=5.0,
    max_attempts=5,
    backoff_base_seconds=1.0,
    backoff_max_seconds=30.0,
    timeout_seconds=10.0,
    max_quarantine_fraction=0.05,
)
