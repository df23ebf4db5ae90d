"""Factories: a source spec becomes its raw asset and its clean asset (with the contract check)."""


import datetime as dt

import dagster as dg

from ml_platform import settings
from ml_platform.automation import on_upstream_update
from ml_platform.contract_check import contract_check_spec, evaluate_contract
from ml_platform.contracts import table_contract as tc
from ml_platform.ingestion.clean_write import write_clean
from ml_platform.ingestion.landing import landed_files, unsupported_files
from ml_platform.ingestion.raw_files import create_raw_tables, ingest_file
from ml_platform.partitions import daily_partitions, run_window, window_label
from ml_platform.sources.spec import FileSourceSpec
from ml_platform.warehouse import Warehouse

WAREHOUSE_POOL = "duckdb"  # one writer at a time; limit set in dagster.yaml


def _common(spec: FileSourceSpec) -> dict:
    return {
        "partitions_def": daily_partitions() if spec.is_partitioned else None,
        "backfill_policy": dg.BackfillPolicy.single_run() if spec.is_partitioned else None,
        "pool": WAREHOUSE_POOL,
        "owners": [spec.owner],
        "tags": {"source": spec.name, **spec.tags},
    }


def raw_asset(spec: FileSourceSpec) -> dg.AssetsDefinition:
    partition_note = "one partition per landing date (UTC)" if spec.is_partitioned else "a snapshot"
    @dg.asset(
        name=spec.raw_table,
        group_name="raw",
        kinds={"duckdb", *spec.formats},
        description=f"{spec.description}\n\nAs landed, values kept as text, {partition_note}, with lineage.",
        **_common(spec),
    )
    def _raw(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        window = run_window(context) if spec.is_partitioned else None
        files = landed_files(settings.landing_dir(), spec.landing_folder, spec.formats, spec.is_partitioned, window)
        ingested_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        scope = "landing_date BETWEEN ? AND ?" if window else "TRUE"
        params = list(window) if window else []
        with warehouse.transaction() as con:
            create_raw_tables(con, spec)
            con.execute(f"DELETE FROM {tc.quote(spec.raw_table)} WHERE {scope}", params)
            con.execute(f"DELETE FROM landed_files WHERE source = ? AND {scope}", [spec.name, *params])
            ledger = [ingest_file(con, spec, f, ingested_at) for f in files]
        rows = sum(entry["rows"] for entry in ledger)
        versions = sorted({entry["schema_version"] for entry in ledger})
        ignored = [p.relative_to(settings.landing_dir()).as_posix()
                   for p in unsupported_files(settings.landing_dir(), spec.landing_folder, spec.formats)]
        context.log.info(f"{spec.raw_table} {window_label(window)}: {len(files)} files, {rows} rows")
        if ignored:
            context.log.warning(f"files in landing that {spec.name} cannot read (left in place): {ignored}")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "files": len(files),
                "schema_versions": ", ".join(versions) or "none",
                "unknown_schema_files": sum(e["schema_version"] == "unknown" for e in ledger),
                "ignored_files": dg.MetadataValue.json(ignored),
                "ingested_files": dg.MetadataValue.json(ledger),
            }
        )

    return _raw


def clean_asset(spec: FileSourceSpec, raw: dg.AssetsDefinition) -> dg.AssetsDefinition:
    key = dg.AssetKey(spec.clean_table)
    if spec.is_partitioned:
        # Event day E can arrive on landing days E-1 (producers ahead of UTC) .. E+tolerance.
        mapping = dg.TimeWindowPartitionMapping(
            start_offset=-1, end_offset=spec.late_tolerance_days, allow_nonexistent_upstream_partitions=True
        )
        deps = [dg.AssetDep(raw.key, partition_mapping=mapping)]
    else:
        deps = [raw.key]

    @dg.asset(
        name=spec.clean_table,
        group_name="clean",
        kinds={"duckdb", "pandera"},
        deps=deps,
        description=(
            f"{spec.description}\n\nTyped to the {spec.contract.__name__} contract, UTC, deduplicated by "
            f"{', '.join(spec.key_columns)}. Rows breaking the contract go to `{spec.quarantine_table}`."
        ),
        metadata={"dagster/column_schema": tc.table_schema(spec.contract), "contract": spec.contract.__name__},
        check_specs=[
            contract_check_spec(
                key, spec.contract, _common(spec)["partitions_def"],
                f"Fails above {spec.max_quarantine_fraction:.0%} quarantined.",
            )
        ],
        automation_condition=on_upstream_update(),
        **_common(spec),
    )
    def _clean(context: dg.AssetExecutionContext, warehouse: Warehouse):
        window = run_window(context) if spec.is_partitioned else None
        with warehouse.transaction() as con:
            acc = write_clean(con, spec, window)
        if not acc.balanced:
            raise RuntimeError(f"{spec.clean_table} {window_label(window)}: row accounting does not balance: {acc}")
        scope = "TRUE" if window is None else f"{tc.quote(spec.partition_column)} BETWEEN DATE '{window[0]}' AND DATE '{window[1]}'"
        check = evaluate_contract(
            warehouse, spec.contract, f"SELECT * FROM {tc.quote(spec.clean_table)} WHERE {scope}",
            quarantined=acc.quarantined, rows_in_scope=acc.clean + acc.quarantined + acc.duplicates,
            max_quarantine_fraction=spec.max_quarantine_fraction,
        )
        context.log.info(f"{spec.clean_table} {window_label(window)}: {acc}")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": acc.clean,
                "rows_read": acc.rows_read,
                "quarantined": acc.quarantined,
                "duplicates_removed": acc.duplicates,
                "late_rows": acc.late_rows,
                "out_of_partition": acc.out_of_partition,
                "extra_columns": ", ".join(acc.extra_columns) or "none",
                "quarantined_by_rule": dg.MetadataValue.json(acc.quarantined_by_rule),
                "by_partition": dg.MetadataValue.json(acc.by_partition),
            },
            check_results=[check],
        )

    return _clean


def source_assets(spec: FileSourceSpec) -> list[dg.AssetsDefinition]:
    raw = raw_asset(spec)
    return [raw, clean_asset(spec, raw)]
