"""Factory: a source spec becomes its clean asset (contract check included), whatever the kind.

Every kind writes the same raw shape (`ml_platform.raw.table`), so typing, UTC
normalization, dedup, quarantine and the contract check are the same code for files,
databases and APIs.
"""

import dagster as dg

from ml_platform import settings
from ml_platform.automation import CHANGED_FROM, Read, on_upstream_update
from ml_platform.checks.contract import (
    QuarantineFigures,
    contract_check_spec,
    evaluate_contract,
    publish_contract_table,
)
from ml_platform.checks.late_arrivals import Arrivals, beyond_tolerance_counts
from ml_platform.checks.quality import (
    CheckedTable,
    evaluate_history_quality,
    evaluate_quality,
    quality_check_specs,
    record_quality_profiles,
)
from ml_platform.clean.snapshot_history import snapshots_through
from ml_platform.clean.staging import too_late_rule
from ml_platform.clean.write import CleanAccounting, clean_table, write_clean
from ml_platform.contracts import personal
from ml_platform.contracts import table_contract as tc
from ml_platform.dagster_previews import acknowledged
from ml_platform.partitions import daily_partitions, run_window, window_keys, window_label
from ml_platform.raw.spec import SourceSpec
from ml_platform.warehouse import WAREHOUSE_POOL, Warehouse


def clean_asset(spec: SourceSpec, raw_key: dg.AssetKey) -> dg.AssetsDefinition:
    key = dg.AssetKey(spec.clean_table)
    table = clean_table(spec)
    checked = CheckedTable(
        spec.clean_table,
        spec.partition_column,
        spec.key_columns,
        spec.source_columns,
        frozenset(personal.personal_columns(spec.contract)),
    )
    if spec.is_partitioned:
        partitions_def = daily_partitions()
        # Event day E can arrive on landing days E-1 (producers ahead of UTC) .. E+tolerance; days
        # after today do not exist yet and hold nothing.
        with acknowledged("allow_nonexistent_upstream_partitions"):
            mapping = dg.TimeWindowPartitionMapping(
                start_offset=-1, end_offset=spec.late_tolerance_days, allow_nonexistent_upstream_partitions=True
            )
        deps = [dg.AssetDep(raw_key, partition_mapping=mapping)]
        # A parallel raw run commits outside the warehouse pool (`pooled` of ml_platform.automation.Read).
        reads = (Read(raw_key.path[-1], -1, spec.late_tolerance_days, pooled=not settings.parallel_raw()),)
        shape = f"one partition per UTC event day, deduplicated by {', '.join(spec.key_columns)}"
    else:
        partitions_def = None
        deps = [dg.AssetDep(raw_key, partition_mapping=dg.AllPartitionMapping())]
        reads = (Read.whole(raw_key.path[-1]),)
        shape = f"every version of each {', '.join(spec.key_columns)} across daily snapshots (valid_from / valid_to)"

    # Single-run range backfills: one set-based write per range (see dagster_previews).
    with acknowledged("backfill_policy"):

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
            metadata={
                "dagster/column_schema": tc.table_schema(spec.contract),
                "dagster/table_name": spec.clean_table,
                "contract": spec.contract.__name__,
            },
            check_specs=[
                contract_check_spec(
                    key, spec.contract, partitions_def, f"Fails above {spec.max_quarantine_fraction:.0%} quarantined."
                ),
                *quality_check_specs(key, spec.quality, partitions_def, spec.key_columns),
            ],
            # A stream's clean table is rebuilt at most once per tick of its clean_schedule (every
            # micro-batch writes raw; see SourceSpec.clean_schedule).
            automation_condition=on_upstream_update(reads, schedule=spec.clean_schedule),
            # Rebuilt whenever raw lands, so it is due as often as its source lands.
            freshness_policy=spec.freshness.policy(),
        )
        def _clean(context: dg.AssetExecutionContext, warehouse: Warehouse):
            window = run_window(context) if spec.is_partitioned else None
            with warehouse.transaction() as con:
                acc = write_clean(con, spec, window)
                if window:
                    record_quality_profiles(con, spec.quality, checked, window)
            context.log.info(f"{spec.clean_table} {window_label(window)}: {acc}")
            partitions = window_keys(window) if window else []
            verdicts = evaluate_contract(
                warehouse, table, window, partitions, _quarantine_figures(spec, acc, partitions)
            )
            with warehouse.read() as con:
                if window:
                    arrivals = _arrivals(con, spec, acc, window) if spec.quality.late_arrivals else {}
                    dimensions = {ref.table: snapshots_through(con, ref.table) for ref in spec.quality.references}
                    quality = evaluate_quality(
                        con, spec.quality, checked, window, arrivals, spec.late_tolerance_days, dimensions
                    )
                else:
                    quality = evaluate_history_quality(con, spec.quality, checked)
            metadata = {
                "raw_rows_scanned": acc.raw_rows_scanned,
                "accepted_rows": acc.accepted,
                "quarantined": acc.quarantined,
                "duplicates_removed": acc.duplicates,
                "deleted_at_source": acc.deleted,
                "owned_by_other_days": acc.owned_by_other_days,
                "late_rows": acc.late_rows,
                "extra_columns": ", ".join(acc.extra_columns) or "none",
                "quarantined_by_rule": dg.MetadataValue.json(acc.quarantined_by_rule),
                "by_partition": dg.MetadataValue.json(acc.by_partition),
            }
            if window is None:
                # The first day whose versions may differ from the history before: what read the
                # history as of an earlier day is unchanged (ml_platform.automation).
                metadata[CHANGED_FROM] = acc.changed_from.isoformat() if acc.changed_from else ""
            yield from publish_contract_table(
                context,
                warehouse,
                table,
                window,
                acc.partition_rows,
                verdicts,
                metadata,
                # A range run's partitions each show the run's totals and, under partition_*, their own figures.
                partition_metadata={
                    p: {f"partition_{k}": v for k, v in figures.items()} for p, figures in acc.by_partition.items()
                },
                more_checks=quality,
            )

    return _clean


def _arrivals(con, spec: SourceSpec, acc: CleanAccounting, window) -> dict[str, Arrivals]:
    """Each written day's valid rows, late rows (from the write's accounting) and rows that landed
    on it beyond the tolerance (from the quarantine)."""
    beyond = beyond_tolerance_counts(con, spec.quarantine_table, too_late_rule(spec), window)
    arrivals = {}
    for partition in window_keys(window):
        figures = acc.by_partition.get(partition, {})
        valid = sum(figures.get(k, 0) for k in ("accepted", "duplicates_removed", "deleted_at_source"))
        arrivals[partition] = Arrivals(valid, figures.get("late_rows", 0), beyond.get(partition, 0))
    return arrivals


def _quarantine_figures(spec: SourceSpec, acc: CleanAccounting, partitions: list[str]) -> QuarantineFigures:
    """The quarantine counts the contract check weighs, per partition (or for the whole table)."""
    if not partitions:
        return QuarantineFigures(
            spec.quarantine_table, spec.max_quarantine_fraction, {None: acc.quarantined}, {None: acc.rows_in_scope}
        )
    return QuarantineFigures(
        spec.quarantine_table,
        spec.max_quarantine_fraction,
        {p: acc.by_partition.get(p, {}).get("quarantined", 0) for p in partitions},
        {p: acc.owned_by(p) for p in partitions},
    )
