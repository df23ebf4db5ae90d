"""Each user's clickstream activity over the last 5 minutes, live from the `stream_events` topic."""

from __future__ import annotations

import datetime

import ibis.expr.datatypes as dt
from pandera.ibis import DataFrameModel, Field

from ml_platform.contracts import personal
from ml_platform.contracts.lineage import UtcTimestamp
from ml_platform.curated.stream_view import StreamFeatureView
from ml_platform.declarations.stream_features._user_activity import aggregates


class UserActivity5m(DataFrameModel):
    """Per user and micro-batch that brought them events: their activity in the 5 minutes up to their newest event."""

    user_id: dt.String = Field(nullable=False, description="Entity key.", metadata=personal.pseudonymized())
    event_timestamp: UtcTimestamp = Field(
        description="The user's newest event time (never after the batch was read): the values are as of it."
    )
    created_at: UtcTimestamp = Field(description="When the row became servable (the online store's write time).")
    batch_ingested_at: UtcTimestamp = Field(description="When the micro-batch that made the row was read.")
    batch_date: dt.Date = Field(description="UTC day the micro-batch was read: the partition.")
    events_5m: dt.Int64 = Field(ge=1, description="Distinct events in the window.")
    unique_products_viewed_5m: dt.Int64 = Field(ge=0, description="Distinct products viewed.")
    cart_adds_5m: dt.Int64 = Field(ge=0, description="Add-to-cart events.")
    purchases_5m: dt.Int64 = Field(ge=0, description="Purchase events.")
    spend_5m: dt.Float64 = Field(ge=0.0, description="Sum of purchase amounts (exact to the cent).")

    class Config:
        strict = True


VIEW = StreamFeatureView(
    name="user_activity_5m",
    description="Each user's clickstream activity over the last 5 minutes: events, products viewed, cart adds, purchases, spend.",
    contract=UserActivity5m,
    source="stream_events",
    entity_columns=("user_id",),
    window=datetime.timedelta(minutes=5),
    aggregates=aggregates("5m"),
)
