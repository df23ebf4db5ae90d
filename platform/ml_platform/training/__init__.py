"""Training data: point-in-time correct feature retrieval for entity rows (no leakage), with
snapshot accuracy (the views' daily rows) or temporal accuracy (as of each row's exact time)."""

from ml_platform.training.online import get_online_features
from ml_platform.training.point_in_time import (
    ENTITY_TIMESTAMP,
    AmbiguousFeatureRows,
    FeatureTable,
    point_in_time_join,
)
from ml_platform.training.temporal import TemporalFeature, TemporalView, temporal_join
from ml_platform.training.training_set import Accuracy, feature_views, get_training_set

__all__ = [
    "ENTITY_TIMESTAMP",
    "Accuracy",
    "AmbiguousFeatureRows",
    "FeatureTable",
    "TemporalFeature",
    "TemporalView",
    "feature_views",
    "get_online_features",
    "get_training_set",
    "point_in_time_join",
    "temporal_join",
]
