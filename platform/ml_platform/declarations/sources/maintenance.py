"""Maintenance and failure log from the plants' CMMS: the labels for failure prediction."""

from __future__ import annotations

import ibis.expr.datatypes as dt
from pandera.ibis import Field

from ml_platform.contracts.lineage import LineageColumns, UtcTimestamp
from ml_platform.ingestion.files import FileSourceSpec


class CleanMaintenance(LineageColumns):
    """Maintenance and failure events per device: the labels of predictive-maintenance models."""

    record_id: dt.String = Field(nullable=False, description="Log record key.")
    device_id: dt.String = Field(nullable=False, description="Device concerned.")
    event_time: UtcTimestamp = Field(description="When it happened, UTC.")
    event_date: dt.Date = Field(description="UTC date of event_time: the partition.")
    event_type: dt.String = Field(isin=["maintenance", "failure"], description="Planned maintenance or failure.")
    component: dt.String = Field(
        nullable=True, isin=["bearing", "motor", "pump", "sensor"], description="Part concerned."
    )
    downtime_minutes: dt.Int64 = Field(nullable=True, ge=0, description="Minutes out of service.")

    class Config:
        strict = True


SPEC = FileSourceSpec(
    name="maintenance",
    description="Maintenance and failure events per device, exported daily by the CMMS.",
    owner="team:iot",
    contract=CleanMaintenance,
    key_columns=("record_id",),
    event_time_column="event_time",
    partition_column="event_date",
    # Corrections to the log arrive within two days; failure labels settle by then.
    late_tolerance_days=2,
    formats=("csv",),
    schema_policy="strict",
    schema_versions={"v1": ("record_id", "device_id", "event_time", "event_type", "component", "downtime_minutes")},
    max_quarantine_fraction=0.0,
)
