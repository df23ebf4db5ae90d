"""Device telemetry: hourly JSON Lines micro-batches from the plants' IoT gateways."""

from __future__ import annotations

import datetime

import ibis.expr.datatypes as dt
from pandera.ibis import Field

from ml_platform.contracts.freshness import FreshnessRule
from ml_platform.contracts.lineage import LineageColumns, UtcTimestamp
from ml_platform.ingestion.files import FileSourceSpec


class CleanTelemetry(LineageColumns):
    """One reading per device and timestamp, with the physical validity ranges enforced."""

    device_id: dt.String = Field(nullable=False, description="Device key.")
    timestamp: UtcTimestamp = Field(description="Reading time, UTC.")
    reading_date: dt.Date = Field(description="UTC date of the reading: the partition.")
    temperature: dt.Float64 = Field(nullable=True, ge=0.0, le=200.0, description="Temperature, °C (0–200).")
    vibration: dt.Float64 = Field(nullable=True, ge=0.0, le=100.0, description="Vibration, mm/s (0–100).")
    pressure: dt.Float64 = Field(nullable=True, ge=0.0, description="Pressure, bar.")
    rpm: dt.Int64 = Field(nullable=True, ge=0, description="Rotations per minute.")
    power_consumption: dt.Float64 = Field(nullable=True, ge=0.0, description="Power draw, kW.")
    operating_hours: dt.Float64 = Field(nullable=True, ge=0.0, description="Cumulative operating hours.")
    maintenance_flag: dt.Boolean = Field(nullable=True, description="Maintenance happened in this hour.")
    location: dt.String = Field(nullable=True, description="Plant the device is installed in.")

    class Config:
        strict = True


SPEC = FileSourceSpec(
    name="telemetry",
    description="Sensor readings (temperature, vibration, pressure, rpm, power) from every device, hourly.",
    owner="team:iot",
    contract=CleanTelemetry,
    key_columns=("device_id", "timestamp"),
    event_time_column="timestamp",
    partition_column="reading_date",
    late_tolerance_days=1,
    formats=("jsonl",),
    schema_policy="add_only",
    max_quarantine_fraction=0.05,
    # A batch an hour: two missed batches are a warning, half a day without one an error.
    freshness=FreshnessRule(warn_after=datetime.timedelta(hours=3), error_after=datetime.timedelta(hours=12)),
)
