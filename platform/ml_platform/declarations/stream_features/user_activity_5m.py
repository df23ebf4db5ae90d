"""Each user's clickstream activity over the last 5 minutes, live from the `stream_events` topic."""

from __future__ import annotations

import datetime

from ml_platform.curated.stream_view import StreamFeatureView
from ml_platform.declarations.stream_features._user_activity import aggregates, contract

UserActivity5m = contract("UserActivity5m", "5m", "5 minutes")

VIEW = StreamFeatureView(
    name="user_activity_5m",
    description="Each user's clickstream activity over the last 5 minutes: events, products viewed, cart adds, purchases, spend.",
    contract=UserActivity5m,
    source="stream_events",
    entity_columns=("user_id",),
    window=datetime.timedelta(minutes=5),
    aggregates=aggregates("5m"),
)
