"""Device telemetry: hourly JSON Lines micro-batches from the plants' IoT gateways."""

from ml_platform.contracts.telemetry import CleanTelemetry
from ml_platform.sources.spec import FileSourceSpec

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
)
