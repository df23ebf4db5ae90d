"""Factory: a file source spec becomes its raw asset (with the schema check) and landing sensor."""

import datetime as dt

import dagster as dg

from ml_platform import settings
from ml_platform.ingestion.landing import landed_files, unsupported_files
from ml_platform.ingestion.raw_files import ingest_file, replace_raw_window
from ml_platform.ingestion.schema_check import evaluate_schema, schema_check_spec
from ml_platform.ingestion.sensors import landing_sensor
from ml_platform.partitions import WAREHOUSE_POOL, daily_partitions, run_window, window_label
from ml_platform.sources.spec import FileSourceSpec
from ml_platform.warehouse import Warehouse


def file_raw_asset(spec: FileSourceSpec) -> dg.AssetsDefinition:
    key = dg.AssetKey(spec.raw_table)
    partitions_def = daily_partitions()

    @dg.asset(
        name=spec.raw_table,
        group_name="raw",
        kinds={"duckdb", *spec.formats},
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
        owners=[spec.owner],
        tags={"source": spec.name, **spec.tags},
        description=(
            f"{spec.description}\n\nFiles from landing/{spec.landing_folder}/<YYYY-MM-DD>/ as landed: one "
            "partition per landing day (UTC), values kept as text, with lineage."
        ),
        check_specs=[schema_check_spec(key, spec, partitions_def)],
    )
    def _raw(context: dg.AssetExecutionContext, warehouse: Warehouse):
        window = run_window(context)
        files = landed_files(settings.landing_dir(), spec.landing_folder, spec.formats, window)
        ingested_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        with warehouse.transaction() as con:
            replace_raw_window(con, spec, window)
            ledger = [ingest_file(con, spec, f, ingested_at) for f in files]
            schema = evaluate_schema(con, spec, window)
        rows = sum(entry["rows"] for entry in ledger)
        ignored = [p.relative_to(settings.landing_dir()).as_posix()
                   for p in unsupported_files(settings.landing_dir(), spec.landing_folder, spec.formats)]
        context.log.info(f"{spec.raw_table} {window_label(window)}: {len(files)} files, {rows} rows")
        if ignored:
            context.log.warning(f"files in landing that {spec.name} cannot read (left in place): {ignored}")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "files": len(files),
                "schema_versions": ", ".join(sorted({e["schema_version"] for e in ledger})) or "none",
                "ignored_files": dg.MetadataValue.json(ignored),
                "ingested_files": dg.MetadataValue.json(ledger),
            },
            check_results=[schema],
        )

    return _raw


def file_source_definitions(spec: FileSourceSpec) -> tuple[list[dg.AssetsDefinition], list[dg.SensorDefinition]]:
    raw = file_raw_asset(spec)
    return [raw], [landing_sensor(spec, raw.key, raw.partitions_def)]
