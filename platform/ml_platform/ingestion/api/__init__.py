"""A REST API fetched per location and day on a schedule, its responses kept for re-processing."""

from ml_platform.ingestion.api.spec import ApiSourceSpec

__all__ = ["ApiSourceSpec"]
