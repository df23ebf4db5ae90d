"""Assembles a source: its spec becomes the kind's raw side, then the shared clean asset.

Each source kind's `assets.py` has a builder returning its raw asset, what triggers it (sensors,
schedules) and the resources it needs; the clean asset is the same for every kind. A new kind
adds one line to RAW_SIDES.
"""

from __future__ import annotations

import dagster as dg

from ml_platform.clean.asset import clean_asset
from ml_platform.ingestion.raw_asset import RawSide
from ml_platform.ingestion.spec import SourceSpec
from ml_platform.landing_freshness import landing_freshness_check
from ml_platform.source_kinds.api import ApiSourceSpec
from ml_platform.source_kinds.api.assets import api_raw_side
from ml_platform.source_kinds.files import FileSourceSpec
from ml_platform.source_kinds.files.assets import file_raw_side
from ml_platform.source_kinds.postgres import PostgresSourceSpec
from ml_platform.source_kinds.postgres.assets import postgres_raw_side

RAW_SIDES = {
    FileSourceSpec: file_raw_side,
    PostgresSourceSpec: postgres_raw_side,
    ApiSourceSpec: api_raw_side,
}


def source_definitions(spec: SourceSpec) -> RawSide:
    """The source's raw side with its clean asset and its landing_freshness check appended."""
    builder = next((b for kind, b in RAW_SIDES.items() if isinstance(spec, kind)), None)
    if builder is None:
        raise TypeError(f"source {spec.name}: no builder for {type(spec).__name__}")
    built = builder(spec)
    built.assets.append(clean_asset(spec, dg.AssetKey(spec.raw_table)))
    built.assets.append(landing_freshness_check(spec))
    return built
