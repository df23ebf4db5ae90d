"""Contracts of the IoT sources: device telemetry readings and the maintenance / failure log."""

from __future__ import annotations

import ibis.expr.datatypes as dt
from pandera.ibis import Field

from ml_platform.contracts.lineage import LineageColumns, UtcTimestamp


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


class CleanMaintenance(LineageColumns):
    """Maintenance and failure events per device: the labels of predictive-maintenance models."""

    record_id: dt.String = Field(nullable=False, description="Log record key.")
    device_id: dt.String = Field(nullable=False, description="Device concerned.")
    event_time: UtcTimestamp = Field(description="When it happened, UTC.")
    event_date: dt.Date = Field(description="UTC date of event_time: the partition.")
    event_type: dt.String = Field(isin=["maintenance", "failure"], description="Planned maintenance or failure.")
    component: dt.String = Field(nullable=True, isin=["bearing", "motor", "pump", "sensor"], description="Part concerned.")
    downtime_minutes: dt.Int64 = Field(nullable=True, ge=0, description="Minutes out of service.")

    class Config:
        strict = True
