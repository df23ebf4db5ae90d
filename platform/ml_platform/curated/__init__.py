"""Curated tables (ML features): a table is its SQL plus its contract; the platform makes the asset."""

from ml_platform.curated.table import CuratedTable

__all__ = ["CuratedTable"]
