"""Curated tables and feature views: a table is its SQL plus its contract; the platform makes the asset.

`Read` (from `ml_platform.automation`) says what a partition reads beyond its own day of a table.
"""

from ml_platform.automation import Read
from ml_platform.curated.feature_view import FeatureView
from ml_platform.curated.label import Label
from ml_platform.curated.table import CuratedTable

__all__ = ["CuratedTable", "FeatureView", "Label", "Read"]
