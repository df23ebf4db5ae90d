"""Curated tables and feature views: a table is its SQL plus its contract; the platform makes the asset."""

from ml_platform.curated.feature_view import FeatureView
from ml_platform.curated.label import Label
from ml_platform.curated.table import CuratedTable

__all__ = ["CuratedTable", "FeatureView", "Label"]
