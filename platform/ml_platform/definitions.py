"""The Dagster code location: every source's assets and triggers, the features, the warehouse."""

import dagster as dg

from ml_platform import settings
from ml_platform.features.user_daily_features import user_daily_features
from ml_platform.ingestion.source_definitions import source_definitions
from ml_platform.sources.registry import discover_specs
from ml_platform.warehouse import Warehouse


def build_definitions() -> dg.Definitions:
    assets: list = [user_daily_features]
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
    resources: dict = {"warehouse": Warehouse(path=str(settings.warehouse_path()))}
    for spec in discover_specs():
        built = source_definitions(spec)
        assets += built.assets
        sensors += built.sensors
        schedules += built.schedules
        resources.update(built.resources)
    return dg.Definitions(
        assets=assets, sensors=sensors, schedules=schedules, resources=resources,
        # Warehouse writers run one at a time anyway (the duckdb pool), so steps run in the run's
        # own process instead of paying a subprocess start per step.
        executor=dg.in_process_executor,
    )


defs = build_definitions()
