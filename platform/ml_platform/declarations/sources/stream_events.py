"""Clickstream events as the web shop's event bus carries them: JSON records on the Kafka topic
`clickstream`, keyed by user.

The same events as the `events` files, live: `python -m ml_platform.demo stream --rate N` produces
them (with the duplicates, late and out-of-order events and the occasional poison message real
producers make), and `make dev` starts a broker and a gentle producer. Until
`ML_PLATFORM_KAFKA_BOOTSTRAP_SERVERS` is set the source's lag sensor skips and says so.
"""

from __future__ import annotations

import datetime

import ibis.expr.datatypes as dt
from pandera.ibis import Field

from ml_platform.contracts import personal
from ml_platform.contracts.freshness import FreshnessRule
from ml_platform.contracts.lineage import LineageColumns, UtcTimestamp
from ml_platform.contracts.quality_rules import QualityRules, Reference
from ml_platform.ingestion.kafka import KafkaSourceSpec

EVENT_TYPES = ["page_view", "product_view", "search", "add_to_cart", "remove_from_cart", "purchase"]
DEVICES = ["mobile", "desktop", "tablet"]


class CleanStreamEvents(LineageColumns):
    """One row per distinct clickstream event from the stream, typed, in UTC, deduplicated by event_id."""

    event_id: dt.String = Field(nullable=False, unique=True, description="Producer's event id (dedup key).")
    user_id: dt.String = Field(
        nullable=False, description="User who caused the event (the message key).", metadata=personal.pseudonymized()
    )
    event_type: dt.String = Field(isin=EVENT_TYPES, description="What happened.")
    event_time: UtcTimestamp = Field(description="When it happened, UTC (set by the producer).")
    event_date: dt.Date = Field(description="UTC date of event_time: the partition.")
    product_id: dt.String = Field(nullable=True, description="Product involved, if any.")
    amount: dt.Float64 = Field(nullable=True, ge=0.0, le=10_000.0, description="Purchase amount.")
    device_type: dt.String = Field(nullable=True, isin=DEVICES, description="Device class.")
    session_id: dt.String = Field(nullable=True, description="Client session.")

    class Config:
        strict = True


SPEC = KafkaSourceSpec(
    name="stream_events",
    description="Clickstream events from the web shop's event bus (Kafka topic `clickstream`), live.",
    owner="team:web-analytics",
    contract=CleanStreamEvents,
    topic="clickstream",
    key_columns=("event_id",),
    event_time_column="event_time",
    partition_column="event_date",
    # Phones replay events buffered offline: up to a day late is normal for a clickstream.
    late_tolerance_days=1,
    schema_versions={
        "v1": (
            "event_id",
            "user_id",
            "event_type",
            "event_time",
            "product_id",
            "amount",
            "device_type",
            "session_id",
        )
    },
    max_quarantine_fraction=0.05,
    # A live stream: ten quiet minutes are unusual, an hour means the producer or the broker stopped.
    freshness=FreshnessRule(warn_after=datetime.timedelta(minutes=10), error_after=datetime.timedelta(hours=1)),
    quality=QualityRules(
        references=(
            Reference(column="user_id", table="clean_users", key="user_id"),
            Reference(column="product_id", table="clean_products", key="product_id"),
        )
    ),
)
