"""The Dagster code location: every declared source's assets and triggers, the curated tables and
labels, the training sets and models, the monitoring sensors, the warehouse.

A source is assembled from its spec: its kind's raw side (each kind's `assets.py` under
`ml_platform.ingestion` has a builder returning the raw asset, what triggers it and the resources
it needs), then the clean asset and the `landing_freshness` check, the same for every kind. A new
kind adds one line to `RAW_SIDES`.

`workspace.yaml`, `dagster dev`, the `dagster` CLI and `dg` load `defs` from here. It is built
lazily (`@dg.definitions`), when Dagster loads the code location, not at import time.
"""

from __future__ import annotations

import functools

import dagster as dg

from ml_platform import settings
from ml_platform.checks.audit import AUDIT_JOB
from ml_platform.checks.landing_freshness import landing_freshness_check, landing_freshness_sensor
from ml_platform.checks.privacy import raw_personal_columns
from ml_platform.clean.asset import clean_asset
from ml_platform.contracts.freshness import derived_rule
from ml_platform.curated import FeatureView
from ml_platform.curated.audit import audit_check
from ml_platform.curated.stream_asset import stream_view_asset
from ml_platform.curated.table import curated_asset
from ml_platform.dagster_previews import acknowledged
from ml_platform.declarations import (
    discover_curated_tables,
    discover_labels,
    discover_specs,
    discover_stream_views,
    discover_training_sets,
)
from ml_platform.ingestion.api import ApiSourceSpec
from ml_platform.ingestion.api.assets import api_raw_side
from ml_platform.ingestion.files import FileSourceSpec
from ml_platform.ingestion.files.assets import file_raw_side
from ml_platform.ingestion.kafka import KafkaSourceSpec
from ml_platform.ingestion.kafka.assets import kafka_raw_side
from ml_platform.ingestion.postgres import PostgresSourceSpec
from ml_platform.ingestion.postgres.assets import postgres_raw_side
from ml_platform.ingestion.raw_asset import RawSide
from ml_platform.lakehouse.housekeeping_asset import housekeeping_schedule, lake_housekeeping
from ml_platform.monitoring import monitoring_sensors
from ml_platform.raw.spec import SourceSpec
from ml_platform.training.assets import training_assets
from ml_platform.warehouse import Warehouse

RAW_SIDES = {
    FileSourceSpec: file_raw_side,
    PostgresSourceSpec: postgres_raw_side,
    ApiSourceSpec: api_raw_side,
    KafkaSourceSpec: kafka_raw_side,
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


def stream_view_assets(views, specs: list[SourceSpec], raw_personal=None) -> list[dg.AssetsDefinition]:
    """Each stream feature view's asset, on the stream source it names."""
    streams = {spec.name: spec for spec in specs if isinstance(spec, KafkaSourceSpec)}
    for view in views:
        if view.source not in streams:
            raise ValueError(
                f"stream feature view {view.name}: {view.source!r} is not a stream source; {sorted(streams)} are"
            )
    return [stream_view_asset(view, streams[view.source], raw_personal) for view in views]


def build_definitions() -> dg.Definitions:
    curated, labels = discover_curated_tables(), discover_labels()
    specs = discover_specs()
    # A curated table without its own freshness rule is due as its inputs' sources land.
    source_rules = {spec.clean_table: spec.freshness for spec in specs}
    # Where raw personal values live: each curated table's privacy check compares with them.
    raw_personal = raw_personal_columns({spec.clean_table: spec.contract for spec in specs})
    assets: list = [
        curated_asset(table, derived_rule(table.source_tables, source_rules), raw_personal=raw_personal)
        for table in [*curated, *labels]
    ]
    views = [table for table in curated if isinstance(table, FeatureView)]
    assets += stream_view_assets(discover_stream_views(), specs, raw_personal)
    assets += training_assets(discover_training_sets(), labels, views)
    # The consistency audit of every curated table, on a schedule (never blocking).
    audits = [audit_check(table, partition_columns(specs, [*curated, *labels])) for table in [*curated, *labels]]
    audit_job = dg.define_asset_job(
        AUDIT_JOB, selection=dg.AssetSelection.checks(*(key for a in audits for key in a.check_keys))
    )
    with acknowledged("use_user_code_server"):
        automation = dg.AutomationConditionSensorDefinition(
            "automation",
            target=dg.AssetSelection.all(),
            default_status=dg.DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=settings.sensor_interval_seconds(),
            # One run per partition (not one range backfill) so every partition gets its own
            # contract-check result, which gates that partition's downstream automation.
            emit_backfills=False,
            # Evaluated in the code location: the platform's own conditions (ml_platform.automation)
            # run there, and only there.
            use_user_code_server=True,
        )
    sensors: list = [automation]
    assets.append(lake_housekeeping)
    schedules: list = [
        dg.ScheduleDefinition(
            name=f"{AUDIT_JOB}_schedule",
            job=audit_job,
            cron_schedule=settings.audit_cron(),
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description="Recomputes every curated table's latest partitions and compares (the audit check).",
        ),
        housekeeping_schedule(),
    ]
    resources: dict = {"warehouse": Warehouse(database=str(settings.warehouse_path()))}
    for spec in specs:
        built = source_definitions(spec)
        assets += built.assets
        sensors += built.sensors
        schedules += built.schedules
        resources.update(built.resources)
    sensors.append(landing_freshness_sensor(specs))
    # Quality reports and alerts, read from the instance after each run ends.
    sensors += monitoring_sensors()
    return dg.Definitions(
        assets=assets,
        asset_checks=audits,
        jobs=[audit_job],
        sensors=sensors,
        schedules=schedules,
        resources=resources,
        # Warehouse writers run one at a time anyway (the duckdb pool), so steps run in the run's
        # own process instead of paying a subprocess start per step.
        executor=dg.in_process_executor,
    )


def partition_columns(specs: list[SourceSpec], tables: list) -> dict[str, str]:
    """Each partitioned table a curated table can read, with its partition column (a label's clock is
    a raw table: partitioned by landing day)."""
    columns = {spec.raw_table: "landing_date" for spec in specs}
    columns |= {spec.clean_table: spec.partition_column for spec in specs if spec.is_partitioned}
    return columns | {table.name: table.partition_column for table in tables}


@dg.definitions
def defs() -> dg.Definitions:
    return _process_definitions()


@functools.cache
def _process_definitions() -> dg.Definitions:
    # Dagster calls a lazy `defs` several times per process (six in one CLI run, measured); the
    # environment it reads does not change within a process, so it is built once.
    return build_definitions()
