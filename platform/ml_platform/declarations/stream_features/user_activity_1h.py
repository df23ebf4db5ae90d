"""Each user's clickstream activity over the last hour, live from the `stream_events` topic."""

from __future__ import annotations

import datetime

import ibis.expr.datatypes as dt
from pandera.ibis import DataFrameModel, Field

from ml_platform.contracts import personal
from ml_platform.contracts.lineage import UtcTimestamp
from ml_platform.curated.stream_view import StreamFeatureView
from ml_platform.declarations.stream_features._user_activity import aggregates


class UserActivity1h(DataFrameModel):
    """Per user and micro-batch that brought them events: their activity in the hour up to their newest event."""

    user_id: dt.String = Field(nullable=False, description="Entity key.", metadata=personal.pseudonymized())
    event_timestamp: UtcTimestamp = Field(
        description="The user's newest event time (never after the batch was read): the values are as of it."
    )
    created_at: UtcTimestamp = Field(description="When the row became servable (the online store's write time).")
    batch_ingested_at: UtcTimestamp = Field(description="When the micro-batch that made the row was read.")
    batch_date: dt.Date = Field(description="UTC day the micro-batch was read: the partition.")
    events_1h: dt.Int64 = Field(ge=1, description="Distinct events in the window.")
    unique_products_viewed_1h: dt.Int64 = Field(ge=0, description="Distinct products viewed.")
    cart_adds_1h: dt.Int64 = Field(ge=0, description="Add-to-cart events.")
    purchases_1h: dt.Int64 = Field(ge=0, description="Purchase events.")
    spend_1h: dt.Float64 = Field(ge=0.0, description="Sum of purchase amounts (exact to the cent).")

    class Config:
        strict = True


VIEW = StreamFeatureView(
    name="user_activity_1h",
    description="Each user's clickstream activity over the last hour: events, products viewed, cart adds, purchases, spend.",
    contract=UserActivity1h,
    source="stream_events",
    entity_columns=("user_id",),
    window=datetime.timedelta(hours=1),
    aggregates=aggregates("1h"),
)
