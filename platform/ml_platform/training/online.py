"""Latest values for serving: each entity's current feature vector, by the training definitions.

An online lookup is a training-set lookup whose entity rows are all "now": the same views, the
same `view:feature` names, the same rules (nothing written after the time, the view's TTL). So
a model is served exactly the features it was trained on, computed the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import duckdb
import pandas as pd

from ml_platform import privacy
from ml_platform.point_in_time.join import ENTITY_TIMESTAMP
from ml_platform.training.retrieval import feature_views, get_training_set


def get_online_features(
    con: duckdb.DuckDBPyConnection,
    entities: pd.DataFrame,
    features: Sequence[str],
    *,
    at: dt.datetime | None = None,
    views: dict | None = None,
    full_feature_names: bool = False,
) -> pd.DataFrame:
    """One row per entity row (its key columns), in order, with each feature as known at `at`
    (default: now). Features older than their view's TTL are null: stale values are not served.

    The caller passes ids as it knows them (raw user ids): key columns the views hold
    pseudonymized are pseudonymized with the platform's key to look them up, and come back as
    they were passed."""
    at = at or dt.datetime.now(dt.UTC)
    moment = at.astimezone(dt.UTC).replace(tzinfo=None) if at.tzinfo else at
    views = feature_views() if views is None else views
    rows = entities.reset_index(drop=True).assign(**{ENTITY_TIMESTAMP: pd.Timestamp(moment)})
    asked = [views[v] for v in dict.fromkeys(name.partition(":")[0] for name in features) if v in views]
    pseudonymized = {c for view in asked for c in privacy.pseudonymized(view.contract, view.entity_columns)}
    keys = [c for c in rows.columns if c in pseudonymized]
    lookup = privacy.pseudonymize(con, rows, keys)
    served = get_training_set(con, lookup, features, views=views, full_feature_names=full_feature_names).df()
    served[keys] = rows[keys]  # in input order both: the caller's ids back
    return served.drop(columns=[ENTITY_TIMESTAMP])
