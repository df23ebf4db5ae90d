"""Training data: point-in-time correct feature retrieval for entity rows (no leakage)."""

from ml_platform.training.point_in_time import (
    ENTITY_TIMESTAMP,
    AmbiguousFeatureRows,
    FeatureTable,
    point_in_time_join,
)
from ml_platform.training.training_set import feature_views, get_training_set

__all__ = [
    "ENTITY_TIMESTAMP",
    "AmbiguousFeatureRows",
    "FeatureTable",
    "feature_views",
    "get_training_set",
    "point_in_time_join",
]
