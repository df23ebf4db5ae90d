"""Training data: point-in-time correct feature retrieval for entity rows (no leakage)."""

from ml_platform.training.point_in_time import (
    ENTITY_TIMESTAMP,
    AmbiguousFeatureRows,
    FeatureTable,
    point_in_time_join,
)

__all__ = ["ENTITY_TIMESTAMP", "AmbiguousFeatureRows", "FeatureTable", "point_in_time_join"]
