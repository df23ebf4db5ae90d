"""Training sets by feature name: `get_training_set(con, entities, ["user_activity:spend_7d", ...])`.

Names are `view:feature`, the views being the platform's feature views (`ml_platform.features`).
Features of one view are read together; each view is joined point-in-time as
`point_in_time_join` documents: no value from the future, none written after the entity's time,
the view's TTL applied, every entity row back once and in order.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pandas as pd

from ml_platform.training.point_in_time import ENTITY_TIMESTAMP, point_in_time_join


def feature_views() -> dict:
    """The platform's feature views by name."""
    # Imported here: discovery loads every feature module, which imports this package's siblings.
    from ml_platform.curated import FeatureView
    from ml_platform.discovery import discover_curated_tables

    return {t.name: t for t in discover_curated_tables() if isinstance(t, FeatureView)}


def get_training_set(
    con: duckdb.DuckDBPyConnection,
    entities: pd.DataFrame | str,
    features: Sequence[str],
    *,
    full_feature_names: bool = False,
    entity_timestamp: str = ENTITY_TIMESTAMP,
    views: dict | None = None,
) -> duckdb.DuckDBPyRelation:
    """Entity rows (keys of the views asked for, `entity_timestamp`, any labels) with each
    `view:feature` as known at the row's time. `views` defaults to the platform's feature views."""
    views = feature_views() if views is None else views
    requested: dict[str, list[str]] = {}
    for name in features:
        view_name, sep, feature = name.partition(":")
        if not sep or view_name not in views:
            raise ValueError(f"{name!r}: features are named 'view:feature'; views: {sorted(views)}")
        if feature not in views[view_name].features:
            raise ValueError(f"{name!r}: {view_name} has no feature {feature!r}; it has {views[view_name].features}")
        requested.setdefault(view_name, []).append(feature)
    return point_in_time_join(
        con,
        entities,
        [(views[view].feature_table(), columns) for view, columns in requested.items()],
        full_feature_names=full_feature_names,
        entity_timestamp=entity_timestamp,
    )
