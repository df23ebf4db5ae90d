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

from ml_platform.training.point_in_time import ENTITY_TIMESTAMP
from ml_platform.training.training_set import get_training_set


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
    (default: now). Features older than their view's TTL are null: stale values are not served."""
    at = at or dt.datetime.now(dt.UTC)
    moment = at.astimezone(dt.UTC).replace(tzinfo=None) if at.tzinfo else at
    rows = entities.reset_index(drop=True).assign(**{ENTITY_TIMESTAMP: pd.Timestamp(moment)})
    served = get_training_set(con, rows, features, views=views, full_feature_names=full_feature_names).df()
    return served.drop(columns=[ENTITY_TIMESTAMP])
