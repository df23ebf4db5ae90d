"""A REST API fetched per location and day on a schedule, its responses kept for re-processing."""

from ml_platform.source_kinds.api.spec import ApiSourceSpec

__all__ = ["ApiSourceSpec"]
