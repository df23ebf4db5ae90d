"""Training sets by feature name: `get_training_set(con, entities, ["user_activity:spend_7d", ...])`.

Names are `view:feature`, the views being the platform's feature views (`ml_platform.declarations.features`).
Two accuracies, as Chronon names them:

- `accuracy="snapshot"` (the default): each view is joined point-in-time from its rows, as
  `point_in_time_join` documents: the value as of the view's timestamp (for a daily view, the
  last midnight) at or before the entity's time, no value from the future, none written after the
  entity's time, the view's TTL applied.
- `accuracy="temporal"`: every feature asked for is computed as of the entity row's exact time
  from its source rows, as `temporal_join` documents: over `[t - window, t)`, counting only source
  rows available at t. Only features the view declares as temporal can be asked for; any other
  raises ValueError naming it and the view's temporal features. A request is never silently
  mixed: snapshot features go in their own call, whose rows come back in the same order.

Either way every entity row comes back once, in input order, with the features in the order of
their views' first mention and then as asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import duckdb
import pandas as pd

from ml_platform.curated import CuratedTable, FeatureView
from ml_platform.curated.stream_view import StreamFeatureView
from ml_platform.discovery import discover
from ml_platform.point_in_time.join import ENTITY_TIMESTAMP, point_in_time_join
from ml_platform.point_in_time.temporal import temporal_join

Accuracy = Literal["snapshot", "temporal"]


def feature_views() -> dict[str, FeatureView | StreamFeatureView]:
    """The platform's feature views by name: the declared batch ones (`ml_platform.declarations.features`)
    and stream ones (`ml_platform.declarations.stream_features`)."""
    views = {t.name: t for t in discover("features", CuratedTable) if isinstance(t, FeatureView)}
    return views | {v.name: v for v in discover("stream_features", StreamFeatureView)}


def requested_features(features: Sequence[str], views: dict) -> dict[str, list[str]]:
    """`view:feature` names grouped by view, views in the order of their first mention; ValueError
    naming the name (and what exists) for one that is not a feature of a view."""
    requested: dict[str, list[str]] = {}
    known: dict[str, list[str]] = {}  # a view's features, read from its contract once per call
    for name in features:
        view_name, sep, feature = name.partition(":")
        if not sep or view_name not in views:
            raise ValueError(f"{name!r}: features are named 'view:feature'; views: {sorted(views)}")
        if view_name not in known:
            known[view_name] = views[view_name].features
        if feature not in known[view_name]:
            raise ValueError(f"{name!r}: {view_name} has no feature {feature!r}; it has {known[view_name]}")
        requested.setdefault(view_name, []).append(feature)
    return requested


def get_training_set(
    con: duckdb.DuckDBPyConnection,
    entities: pd.DataFrame | str,
    features: Sequence[str],
    *,
    accuracy: Accuracy = "snapshot",
    full_feature_names: bool = False,
    entity_timestamp: str = ENTITY_TIMESTAMP,
    views: dict | None = None,
) -> duckdb.DuckDBPyRelation:
    """Entity rows (keys of the views asked for, `entity_timestamp`, any labels) with each
    `view:feature` as known at the row's time, with snapshot or temporal `accuracy` (see the
    module docstring). `views` defaults to the platform's feature views."""
    views = feature_views() if views is None else views
    requested = requested_features(features, views)
    if accuracy == "snapshot":
        return point_in_time_join(
            con,
            entities,
            [(views[view].feature_table(), columns) for view, columns in requested.items()],
            full_feature_names=full_feature_names,
            entity_timestamp=entity_timestamp,
        )
    if accuracy == "temporal":
        # temporal_join refuses a feature without a temporal declaration, naming the view's.
        return temporal_join(
            con,
            entities,
            [(views[view].temporal_view(), columns) for view, columns in requested.items()],
            full_feature_names=full_feature_names,
            entity_timestamp=entity_timestamp,
        )
    raise ValueError(f"accuracy must be 'snapshot' or 'temporal', not {accuracy!r}")
