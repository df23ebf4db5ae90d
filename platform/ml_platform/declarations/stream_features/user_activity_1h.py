"""Each user's clickstream activity over the last hour, live from the `stream_events` topic."""

from __future__ import annotations

import datetime

from ml_platform.curated.stream_view import StreamFeatureView
from ml_platform.declarations.stream_features._user_activity import aggregates, contract

UserActivity1h = contract("UserActivity1h", "1h", "hour")

VIEW = StreamFeatureView(
    name="user_activity_1h",
    description="Each user's clickstream activity over the last hour: events, products viewed, cart adds, purchases, spend.",
    contract=UserActivity1h,
    source="stream_events",
    entity_columns=("user_id",),
    window=datetime.timedelta(hours=1),
    aggregates=aggregates("1h"),
)
