"""Factory: a PostgreSQL source spec becomes its raw asset (with the schema check), change sensor and resource.

The pieces live beside it: connection.py (the masked, read-only connection), extract.py (the
incremental extraction) and sensor.py (the change sensor).
"""

import dagster as dg

from ml_platform.dagster_previews import acknowledged
from ml_platform.ingestion.postgres.connection import PostgresResource, attached, postgres_resource
from ml_platform.ingestion.postgres.extract import extract_window
from ml_platform.ingestion.postgres.sensor import change_sensor
from ml_platform.ingestion.postgres.spec import PostgresSourceSpec
from ml_platform.ingestion.raw_asset import RawSide, publish_raw, raw_asset_args, raw_outcome
from ml_platform.partitions import run_window, window_label
from ml_platform.raw.lake_run import raw_run
from ml_platform.raw.table import create_raw_tables, ingestion_time, schema_versions_label


def postgres_raw_asset(spec: PostgresSourceSpec) -> dg.AssetsDefinition:
    args = raw_asset_args(
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

    # Single-run range backfills: one pushed-down query per range (see dagster_previews).
    with acknowledged("backfill_policy"):

        @dg.asset(**args)
        def _raw(context: dg.AssetExecutionContext):
            warehouse = context.resources.warehouse
            source: PostgresResource = getattr(context.resources, spec.resource_key)
            window = run_window(context)
            ingested_at = ingestion_time()
            with attached(source, spec) as pg, raw_run(warehouse, spec, window, context.run_id) as run:
                con = run.con
                create_raw_tables(con, spec)
                # Versions are appended: the window's raw rows are read (the days' high-water marks).
                run.keeps_own(spec.raw_table)
                run.keeps_ledger()
                extractions = extract_window(con, pg, source, spec, window, ingested_at)
                ledger = [e["ledger"] for e in extractions if "ledger" in e]
                appended = sum(e["appended"] for e in extractions)
                pulled = sum(e["pulled"] for e in extractions)
                outcome = raw_outcome(con, spec, window)
                metadata = {
                    "source_table": spec.table,
                    "rows_pulled": pulled,
                    "versions_appended": appended,
                    "already_present": pulled - appended,
                    "extractions": dg.MetadataValue.json(
                        [{k: v for k, v in e.items() if k != "ledger"} for e in extractions]
                    ),
                    "schema_versions": schema_versions_label(ledger),
                }
            outcome = run.counted(outcome)
            metadata |= run.metadata()
            context.log.info(
                f"{spec.raw_table} {window_label(window)}: {pulled} rows read from {spec.table}, "
                f"{appended} new versions appended"
            )
            yield from publish_raw(context, spec, outcome, metadata)

    return _raw


def postgres_raw_side(spec: PostgresSourceSpec) -> RawSide:
    resource = postgres_resource(spec)
    raw = postgres_raw_asset(spec)
    return RawSide(assets=[raw], sensors=[change_sensor(spec, raw, resource)], resources={spec.resource_key: resource})
