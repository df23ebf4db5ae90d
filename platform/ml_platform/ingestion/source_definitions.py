"""Turns any source spec into its Dagster definitions: the kind's raw side, then the shared clean side.

Each source kind has a builder for its raw asset and what triggers it (sensors, schedules) and
the resources it needs; the clean asset is the same for every kind. A new kind adds one line to
RAW_SIDES.
"""

import dagster as dg

from ml_platform.ingestion.api_source import api_raw_side
from ml_platform.ingestion.clean_asset import clean_asset
from ml_platform.ingestion.file_source import file_raw_side
from ml_platform.ingestion.postgres_source import postgres_raw_side
from ml_platform.ingestion.raw_side import RawSide
from ml_platform.sources.api_spec import ApiSourceSpec
from ml_platform.sources.postgres_spec import PostgresSourceSpec
from ml_platform.sources.spec import FileSourceSpec, SourceSpec

RAW_SIDES = {
    FileSourceSpec: file_raw_side,
    PostgresSourceSpec: postgres_raw_side,
    ApiSourceSpec: api_raw_side,
}


def source_definitions(spec: SourceSpec) -> RawSide:
    """The source's raw side with its clean asset appended."""
    builder = next((b for kind, b in RAW_SIDES.items() if isinstance(spec, kind)), None)
    if builder is None:
        raise TypeError(f"source {spec.name}: no builder for {type(spec).__name__}")
    built = builder(spec)
    built.assets.append(clean_asset(spec, dg.AssetKey(spec.raw_table)))
    return built
