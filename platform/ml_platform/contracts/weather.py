"""Contract of the weather source: hourly observations per location from the weather history API."""

from __future__ import annotations

import ibis.expr.datatypes as dt
from pandera.ibis import Field

from ml_platform.contracts.lineage import LineageColumns, UtcTimestamp


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
