"""Factory: a source spec becomes its clean asset (contract check included), whatever the kind.

Every kind writes the same raw shape (see raw_files.py), so typing, UTC normalization, dedup,
quarantine and the contract check are the same code for files, databases and APIs.
"""

import dagster as dg

from ml_platform.automation import on_upstream_update
from ml_platform.contract_check import contract_check_spec, evaluate_contract
from ml_platform.contracts import table_contract as tc
from ml_platform.ingestion.clean_write import write_clean
from ml_platform.partitions import WAREHOUSE_POOL, daily_partitions, run_window, window_label
from ml_platform.sources.spec import SourceSpec
from ml_platform.warehouse import Warehouse


def clean_asset(spec: SourceSpec, raw_key: dg.AssetKey) -> dg.AssetsDefinition:
    key = dg.AssetKey(spec.clean_table)
    if spec.is_partitioned:
        partitions_def = daily_partitions()
        # Event day E can arrive on landing days E-1 (producers ahead of UTC) .. E+tolerance.
        mapping = dg.TimeWindowPartitionMapping(
            start_offset=-1, end_offset=spec.late_tolerance_days, allow_nonexistent_upstream_partitions=True
        )
        deps = [dg.AssetDep(raw_key, partition_mapping=mapping)]
        shape = f"one partition per UTC event day, deduplicated by {', '.join(spec.key_columns)}"
    else:
        partitions_def = None
        deps = [dg.AssetDep(raw_key, partition_mapping=dg.AllPartitionMapping())]
        shape = f"every version of each {', '.join(spec.key_columns)} across daily snapshots (valid_from / valid_to)"

    @dg.asset(
        name=spec.clean_table,
        group_name="clean",
        kinds={"duckdb", "pandera"},
        deps=deps,
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run() if partitions_def else None,
        pool=WAREHOUSE_POOL,
        owners=[spec.owner],
        tags={"source": spec.name, **spec.tags},
        description=(
            f"{spec.description}\n\nTyped to the {spec.contract.__name__} contract, UTC, {shape}. "
            f"Rows breaking the contract go to `{spec.quarantine_table}` with the rule they broke."
        ),
        metadata={"dagster/column_schema": tc.table_schema(spec.contract), "contract": spec.contract.__name__},
        check_specs=[
            contract_check_spec(key, spec.contract, partitions_def,
                                f"Fails above {spec.max_quarantine_fraction:.0%} quarantined.")
        ],
        automation_condition=on_upstream_update(),
    )
    def _clean(context: dg.AssetExecutionContext, warehouse: Warehouse):
        window = run_window(context) if spec.is_partitioned else None
        with warehouse.transaction() as con:
            acc = write_clean(con, spec, window)
        if not acc.balanced:
            raise RuntimeError(f"{spec.clean_table} {window_label(window)}: row accounting does not balance: {acc}")
        scope = "TRUE" if window is None else (
            f"{tc.quote(spec.partition_column)} BETWEEN DATE '{window[0]}' AND DATE '{window[1]}'"
        )
        quarantine_scope = "TRUE" if window is None else f"partition_date BETWEEN DATE '{window[0]}' AND DATE '{window[1]}'"
        check = evaluate_contract(
            warehouse, spec.contract, f"SELECT * FROM {tc.quote(spec.clean_table)} WHERE {scope}",
            quarantined=acc.quarantined, rows_in_scope=acc.clean + acc.quarantined + acc.duplicates + acc.deleted,
            max_quarantine_fraction=spec.max_quarantine_fraction,
            quarantine_sql=f"SELECT * FROM {tc.quote(spec.quarantine_table)} WHERE {quarantine_scope}",
        )
        context.log.info(f"{spec.clean_table} {window_label(window)}: {acc}")
        metadata = {
            "dagster/row_count": acc.clean if acc.history_rows is None else acc.history_rows,
            "rows_read": acc.rows_read,
            "accepted_rows": acc.clean,
            "quarantined": acc.quarantined,
            "duplicates_removed": acc.duplicates,
            "deleted_at_source": acc.deleted,
            "late_rows": acc.late_rows,
            "out_of_partition": acc.out_of_partition,
            "extra_columns": ", ".join(acc.extra_columns) or "none",
            "quarantined_by_rule": dg.MetadataValue.json(acc.quarantined_by_rule),
            "by_partition": dg.MetadataValue.json(acc.by_partition),
        }
        return dg.MaterializeResult(metadata=metadata, check_results=[check])

    return _clean
