"""Weather: hourly observations per location, pulled daily from a weather history REST API.

The API answers `GET <ML_PLATFORM_WEATHER_API_URL>/v1/history?location=<id>&date=<YYYY-MM-DD>`
with the UTC day's hourly records under `hourly`, timestamped in local time with an offset.
For demos and tests, `python -m ml_platform.demo.weather_api --port 8765` serves a fake one.
"""

from ml_platform.contracts.weather import CleanWeather
from ml_platform.sources.api_spec import ApiSourceSpec

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
