"""Weather by location, as a feature view: the latest observation the platform knew at each time.

Each clean weather observation is a row keyed by `location` with `observed_at` as its timestamp,
so `get_training_set(con, entities, ["weather:temperature_c", ...])` gives each entity row (a
`location` and an `event_timestamp`) the newest observation at or before its time that had been
pulled by then; unknown locations get nulls.

Availability. The source is a history API pulled once a day: at 00:15 UTC the schedule fetches
the previous UTC day. Its raw partition, and so `landing_date`, is that observation day, not the
day of the fetch; `ingested_at` is when the raw layer ran (for a backfill, long after). An
observation of day D can therefore not be known before D+1 00:15. `created_at` is
`landing_date + 1 day + 1 hour`, D+1 01:00 UTC, when the pull, its retries and the clean run
have finished. A backfilled day is dated as if pulled on schedule, as user_activity dates files
by their landing day, so training rows see what the scheduled platform would have seen; a pull
delayed past 01:00 by an outage is not recorded in the table and still claims 01:00.

The trade-off. With a daily pull, the weather at an event's own time is never known at that
time: the newest known observation is the 23:00 one of the last day pulled, 2 to 26 hours old.
A 3 h TTL would null the features almost always, and `observed_at` as availability would train
on values the platform cannot serve. So the view serves the latest *known* weather with a TTL of
26 h: a value at any time while the daily pulls run, nulls as soon as a day is missing. Weather
at event time needs an intraday source (an hourly pull of the current day, or a current
conditions endpoint); its view would date rows by the pull and use a TTL of a few hours.
"""

from __future__ import annotations

import datetime as dt

import ibis.expr.datatypes as ibis_dt
from pandera.ibis import DataFrameModel, Field

from ml_platform.contracts.lineage import UtcTimestamp
from ml_platform.curated import FeatureView


class Weather(DataFrameModel):
    """One row per location and observation hour, with when the platform could first know it."""

    location: ibis_dt.String = Field(nullable=False, description="Entity key: the weather location id.")
    observed_at: UtcTimestamp = Field(description="Observation time, UTC: the features' timestamp.")
    observation_date: ibis_dt.Date = Field(nullable=False, description="UTC date of observed_at: the partition.")
    created_at: UtcTimestamp = Field(
        description="When the daily pull had made the observation available: 01:00 UTC the day after its landing day."
    )
    temperature_c: ibis_dt.Float64 = Field(nullable=True, ge=-90.0, le=60.0, description="Air temperature, °C.")
    humidity_pct: ibis_dt.Float64 = Field(nullable=True, ge=0.0, le=100.0, description="Relative humidity, %.")
    precipitation_mm: ibis_dt.Float64 = Field(nullable=True, ge=0.0, description="Precipitation in the hour, mm.")
    wind_speed_kmh: ibis_dt.Float64 = Field(nullable=True, ge=0.0, description="Wind speed, km/h.")

    class Config:
        strict = True


# The schedule pulls a day at 00:15 UTC the next day; 01:00 leaves room for retries and the clean run.
SQL = """
SELECT location, observed_at, observation_date,
       CAST(landing_date + 1 AS TIMESTAMP) + INTERVAL 1 HOUR AS created_at,
       temperature_c, humidity_pct, precipitation_mm, wind_speed_kmh
FROM clean_weather
WHERE observation_date BETWEEN $start AND $end
"""

TABLE = FeatureView(
    name="weather",
    description=(
        "Hourly weather per location (temperature, humidity, precipitation, wind), available from 01:00 UTC "
        "the day after the observation day (the daily pull): the latest known weather at each time."
    ),
    contract=Weather,
    partition_column="observation_date",
    sql=SQL,
    reads=("clean_weather",),
    entity_columns=("location",),
    timestamp_column="observed_at",
    created_column="created_at",
    # The newest known observation is 2-26 h old while the daily pulls run; a missed day nulls it.
    ttl=dt.timedelta(hours=26),
)
