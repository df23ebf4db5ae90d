"""Clickstream events: the web shop's producer writes CSV, JSON Lines and Parquet files per day.

The contract `CleanEvents` is the cleaned table's schema and rules; `SPEC` says where the data
comes from and how it is cleaned.
"""

from __future__ import annotations

import ibis.expr.datatypes as dt
from pandera.ibis import Field

from ml_platform.contracts import personal
from ml_platform.contracts.lineage import LineageColumns, UtcTimestamp
from ml_platform.contracts.quality_rules import QualityRules, Reference
from ml_platform.ingestion.files import FileSourceSpec

EVENT_TYPES = ["page_view", "product_view", "search", "add_to_cart", "remove_from_cart", "purchase"]
DEVICES = ["mobile", "desktop", "tablet"]
MAX_AMOUNT = 10_000.0


class CleanEvents(LineageColumns):
    """One row per distinct clickstream event, typed, in UTC, deduplicated by event_id."""

    event_id: dt.String = Field(nullable=False, unique=True, description="Producer's event id (dedup key).")
    user_id: dt.String = Field(
        nullable=False, description="User who caused the event.", metadata=personal.pseudonymized()
    )
    event_type: dt.String = Field(isin=EVENT_TYPES, description="What happened.")
    event_time: UtcTimestamp = Field(description="When it happened, UTC.")
    event_date: dt.Date = Field(description="UTC date of event_time: the partition.")
    product_id: dt.String = Field(nullable=True, description="Product involved, if any.")
    amount: dt.Float64 = Field(nullable=True, ge=0.0, le=MAX_AMOUNT, description="Purchase amount.")
    device_type: dt.String = Field(nullable=True, isin=DEVICES, description="Device class (v3 calls it `device`).")
    session_id: dt.String = Field(nullable=True, description="Client session (schema v2+).")

    class Config:
        strict = True


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
    # Events name users and products the CRM and catalogue snapshots must know on the event's day.
    quality=QualityRules(
        references=(
            Reference(column="user_id", table="clean_users", key="user_id"),
            Reference(column="product_id", table="clean_products", key="product_id"),
        )
    ),
)
