"""Factory: a file source spec becomes its raw asset (with the schema check) and landing sensor."""

import dagster as dg

from ml_platform import settings
from ml_platform.dagster_previews import acknowledged
from ml_platform.ingestion.raw_asset import RawSide, publish_raw, raw_asset_args, raw_outcome
from ml_platform.ingestion.raw_table import ingestion_time, replace_raw_window, schema_versions_label
from ml_platform.partitions import run_window, window_label
from ml_platform.source_kinds.files.landing import landed_files, refused_files, unsupported_files
from ml_platform.source_kinds.files.reader import ingest_file
from ml_platform.source_kinds.files.sensor import landing_sensor
from ml_platform.source_kinds.files.spec import FileSourceSpec
from ml_platform.warehouse import Warehouse


def file_raw_asset(spec: FileSourceSpec) -> dg.AssetsDefinition:
    args = raw_asset_args(
        spec,
        kinds=spec.formats,
        description=(
            f"Files from landing/{spec.landing_folder}/<YYYY-MM-DD>/ as landed: one "
            "partition per landing day (UTC), values kept as text, with lineage."
        ),
    )

    # Single-run range backfills: one set-based write per range (see dagster_previews).
    with acknowledged("backfill_policy"):

        @dg.asset(**args)
        def _raw(context: dg.AssetExecutionContext, warehouse: Warehouse):
            window = run_window(context)
            files = landed_files(settings.landing_dir(), spec.landing_folder, spec.formats, window)
            ingested_at = ingestion_time()
            with warehouse.transaction() as con:
                replace_raw_window(con, spec, window)
                ledger = [ingest_file(con, spec, f, ingested_at) for f in files]
                rows = sum(entry["rows"] for entry in ledger)
                ignored = [
                    p.relative_to(settings.landing_dir()).as_posix()
                    for p in unsupported_files(settings.landing_dir(), spec.landing_folder, spec.formats)
                ]
                refused = refused_files(settings.landing_dir(), spec.landing_folder)
                outcome = raw_outcome(con, spec, window)
                metadata = {
                    "rows_ingested": rows,
                    "files": len(files),
                    "schema_versions": schema_versions_label(ledger),
                    "ignored_files": dg.MetadataValue.json(ignored),
                    "refused_files": dg.MetadataValue.json(refused),
                    "ingested_files": dg.MetadataValue.json(ledger),
                }
            context.log.info(f"{spec.raw_table} {window_label(window)}: {len(files)} files, {rows} rows")
            if refused:
                context.log.warning(f"files in landing that {spec.name} refuses to read: {refused}")
            if ignored:
                context.log.warning(f"files in landing that {spec.name} cannot read (left in place): {ignored}")
            yield from publish_raw(context, spec, outcome, metadata)

    return _raw


def file_raw_side(spec: FileSourceSpec) -> RawSide:
    raw = file_raw_asset(spec)
    return RawSide(assets=[raw], sensors=[landing_sensor(spec, raw.key, raw.partitions_def)])
