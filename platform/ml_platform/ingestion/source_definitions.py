"""Turns any source spec into its Dagster definitions: the kind's raw side, then the shared clean side.

Each source kind registers a builder for its raw asset(s) and triggers (sensors, schedules);
the clean asset is the same for all kinds.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

from ml_platform.ingestion.api_source import api_source_definitions
from ml_platform.ingestion.clean_asset import clean_asset
from ml_platform.ingestion.file_source import file_source_definitions
from ml_platform.sources.api_spec import ApiSourceSpec
from ml_platform.sources.spec import FileSourceSpec, SourceSpec


@dataclass
class SourceDefinitions:
    assets: list = field(default_factory=list)
    sensors: list = field(default_factory=list)
    schedules: list = field(default_factory=list)
    resources: dict = field(default_factory=dict)


# kind -> builder(spec) returning SourceDefinitions whose first asset is the raw asset.
RAW_BUILDERS: dict[type, Callable[[SourceSpec], SourceDefinitions]] = {}


def raw_builder(kind: type):
    def register(builder):
        RAW_BUILDERS[kind] = builder
        return builder
    return register


@raw_builder(FileSourceSpec)
def _file_raw(spec: FileSourceSpec) -> SourceDefinitions:
    assets, sensors = file_source_definitions(spec)
    return SourceDefinitions(assets=assets, sensors=sensors)


@raw_builder(ApiSourceSpec)
def _api_raw(spec: ApiSourceSpec) -> SourceDefinitions:
    return SourceDefinitions(**api_source_definitions(spec))


def source_definitions(spec: SourceSpec) -> SourceDefinitions:
    builder = next((b for kind, b in RAW_BUILDERS.items() if isinstance(spec, kind)), None)
    if builder is None:
        raise TypeError(f"source {spec.name}: no builder for {type(spec).__name__}")
    built = builder(spec)
    raw_key = dg.AssetKey(spec.raw_table)
    built.assets.append(clean_asset(spec, raw_key))
    return built


# Other kinds register themselves with @raw_builder; imported last, as they import this module.
from ml_platform.ingestion import postgres_source  # noqa: E402,F401
