"""Maintenance and failure log from the plants' CMMS: the labels for failure prediction."""

from ml_platform.contracts.telemetry import CleanMaintenance
from ml_platform.sources.spec import FileSourceSpec

SPEC = FileSourceSpec(
    name="maintenance",
    description="Maintenance and failure events per device, exported daily by the CMMS.",
    owner="team:iot",
    contract=CleanMaintenance,
    key_columns=("record_id",),
    event_time_column="event_time",
    partition_column="event_date",
    late_tolerance_days=7,
    formats=("csv",),
    schema_policy="strict",
    schema_versions={"v1": ("record_id", "device_id", "event_time", "event_type", "component", "downtime_minutes")},
    max_quarantine_fraction=0.0,
)
