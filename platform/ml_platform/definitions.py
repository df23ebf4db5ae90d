"""The Dagster code location: every source's assets and triggers, the curated tables and labels,
the training sets and models, the warehouse.

`workspace.yaml`, `dagster dev`, the `dagster` CLI and `dg` load `defs` from here. It is built
lazily (`@dg.definitions`), when Dagster loads the code location, not at import time.
"""

from __future__ import annotations

import functools

import dagster as dg

from ml_platform import settings
from ml_platform.checks.privacy import raw_personal_columns
from ml_platform.curated import FeatureView
from ml_platform.curated.table import curated_asset
from ml_platform.discovery import discover_curated_tables, discover_labels, discover_specs, discover_training_sets
from ml_platform.landing_freshness import landing_freshness_sensor
from ml_platform.modeling.assets import modeling_assets
from ml_platform.monitoring import monitoring_sensors
from ml_platform.quality.freshness import derived_rule
from ml_platform.source_assets import source_definitions
from ml_platform.warehouse import Warehouse


def build_definitions() -> dg.Definitions:
    curated, labels = discover_curated_tables(), discover_labels()
    specs = discover_specs()
    # A curated table without its own freshness rule is due as its inputs' sources land.
    source_rules = {spec.clean_table: spec.freshness for spec in specs}
    # Where raw personal values live: each curated table's privacy check compares with them.
    raw_personal = raw_personal_columns({spec.clean_table: spec.contract for spec in specs})
    assets: list = [
        curated_asset(table, derived_rule(table.reads, source_rules), raw_personal=raw_personal)
        for table in [*curated, *labels]
    ]
    views = [table for table in curated if isinstance(table, FeatureView)]
    assets += modeling_assets(discover_training_sets(), labels, views)
    sensors: list = [
        dg.AutomationConditionSensorDefinition(
            "automation",
            target=dg.AssetSelection.all(),
            default_status=dg.DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=settings.sensor_interval_seconds(),
            # One run per partition (not one range backfill) so every partition gets its own
            # contract-check result, which gates that partition's downstream automation.
            emit_backfills=False,
        )
    ]
    schedules: list = []
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
        sensors=sensors,
        schedules=schedules,
        resources=resources,
        # Warehouse writers run one at a time anyway (the duckdb pool), so steps run in the run's
        # own process instead of paying a subprocess start per step.
        executor=dg.in_process_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    return _process_definitions()


@functools.cache
def _process_definitions() -> dg.Definitions:
    # Dagster calls a lazy `defs` several times per process (six in one CLI run, measured); the
    # environment it reads does not change within a process, so it is built once.
    return build_definitions()
