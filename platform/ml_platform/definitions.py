"""The Dagster code location: every source's assets and sensors, the features, the warehouse."""

from __future__ import annotations

import dagster as dg

from ml_platform import settings
from ml_platform.features.user_daily_features import user_daily_features
from ml_platform.ingestion.assets import source_assets
from ml_platform.ingestion.sensors import landing_sensor
from ml_platform.sources.registry import discover_specs
from ml_platform.warehouse import Warehouse


def build_definitions() -> dg.Definitions:
    assets: list[dg.AssetsDefinition] = []
    sensors: list[dg.SensorDefinition] = []
    for spec in discover_specs():
        raw, clean = source_assets(spec)
        assets += [raw, clean]
        sensors.append(landing_sensor(spec, raw.key, raw.partitions_def))
    assets.append(user_daily_features)
    sensors.append(
        dg.AutomationConditionSensorDefinition(
            "automation",
            target=dg.AssetSelection.all(),
            default_status=dg.DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=settings.sensor_interval_seconds(),
            # One run per partition (not one range backfill) so every partition gets its own
            # contract-check result, which gates that partition's downstream automation.
            emit_backfills=False,
        )
    )
    return dg.Definitions(
        assets=assets,
        sensors=sensors,
        resources={"warehouse": Warehouse(path=str(settings.warehouse_path()))},
    )


defs = build_definitions()
