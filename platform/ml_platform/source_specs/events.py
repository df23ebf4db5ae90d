"""Clickstream events: the web shop's producer writes CSV, JSON Lines and Parquet files per day."""

from ml_platform.contracts.clickstream import CleanEvents
from ml_platform.sources.spec import FileSourceSpec

_V1 = ("event_id", "user_id", "event_type", "event_time", "product_id", "amount")

SPEC = FileSourceSpec(
    name="events",
    description="Clickstream events from the web shop, landed as daily files by the producer.",
    owner="team:web-analytics",
    contract=CleanEvents,
    key_columns=("event_id",),
    event_time_column="event_time",
    partition_column="event_date",
    event_time_zone="UTC",
    late_tolerance_days=3,
    aliases={"device_type": ("device",)},
    schema_versions={
        "v1": _V1,
        "v2": (*_V1, "device_type", "session_id"),
        "v3": (*_V1, "device", "session_id"),
    },
    max_quarantine_fraction=0.10,
)
