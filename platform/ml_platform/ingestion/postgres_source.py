"""Factory: a PostgreSQL source spec becomes its raw asset (with the schema check), change sensor and resource.

The pieces live beside it: postgres_connection.py (the masked, read-only connection),
postgres_extract.py (the incremental extraction) and postgres_sensor.py (the change sensor).
"""

import dagster as dg

from ml_platform.ingestion.postgres_connection import PostgresResource, attached, postgres_resource
from ml_platform.ingestion.postgres_extract import extract_window
from ml_platform.ingestion.postgres_sensor import change_sensor
from ml_platform.ingestion.raw_asset import ingestion_time, raw_asset_args, schema_versions_label
from ml_platform.ingestion.schema_check import evaluate_schema
from ml_platform.ingestion.raw_side import RawSide
from ml_platform.partitions import run_window, window_label
from ml_platform.sources.postgres_spec import PostgresSourceSpec


def postgres_raw_asset(spec: PostgresSourceSpec) -> dg.AssetsDefinition:
    @dg.asset(
        **raw_asset_args(
            spec,
            kinds={"postgres"},
            description=(
                f"Rows of PostgreSQL table `{spec.table}`, one partition per UTC day of "
                f"`{spec.event_time_column}`, extracted incrementally by `{spec.updated_at_column}` "
                f"(overlap {spec.overlap_minutes} min): every new version is appended, values kept as text, "
                "with lineage."
            ),
            required_resource_keys={"warehouse", spec.resource_key},
        )
    )
    def _raw(context: dg.AssetExecutionContext):
        warehouse = context.resources.warehouse
        source: PostgresResource = getattr(context.resources, spec.resource_key)
        window = run_window(context)
        ingested_at = ingestion_time()
        with attached(source, spec) as pg, warehouse.transaction() as con:
            extractions = extract_window(con, pg, source, spec, window, ingested_at)
            schema = evaluate_schema(con, spec, window)
        ledger = [e["ledger"] for e in extractions if "ledger" in e]
        appended = sum(e["appended"] for e in extractions)
        pulled = sum(e["pulled"] for e in extractions)
        context.log.info(
            f"{spec.raw_table} {window_label(window)}: {pulled} rows read from {spec.table}, {appended} new versions appended"
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": appended,
                "source_table": spec.table,
                "rows_pulled": pulled,
                "versions_appended": appended,
                "already_present": pulled - appended,
                "extractions": dg.MetadataValue.json([{k: v for k, v in e.items() if k != "ledger"} for e in extractions]),
                "schema_versions": schema_versions_label(ledger),
            },
            check_results=[schema],
        )

    return _raw


def postgres_raw_side(spec: PostgresSourceSpec) -> RawSide:
    resource = postgres_resource(spec)
    raw = postgres_raw_asset(spec)
    return RawSide(assets=[raw], sensors=[change_sensor(spec, raw, resource)], resources={spec.resource_key: resource})
