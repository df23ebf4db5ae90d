"""A curated table declared as data: its SQL, its contract, what it reads. The asset is derived.

`CuratedTable` names the table, its Pandera contract (schema, rules, docs, UI column schema,
blocking check), its partition column and the SQL that computes a window of partitions from
the clean layer (a template using `$start` and `$end`, the window's first and last day). The
factory makes it a daily-partitioned asset in the `features` group, written through the shared
writer (atomic window replace, per-partition counts, contract check per partition), updated by
the same declarative automation as the clean layer.
"""

from dataclasses import dataclass

import dagster as dg
import pandera.ibis as pa

from ml_platform.automation import on_upstream_update
from ml_platform.checks.contract import contract_check_spec, evaluate_contract, publish_contract_table
from ml_platform.contracts import table_contract as tc
from ml_platform.dagster_previews import acknowledged
from ml_platform.partitions import daily_partitions, run_window, window_keys, window_label
from ml_platform.warehouse import WAREHOUSE_POOL, Warehouse, sql
from ml_platform.warehouse.writer import ContractTable, table_exists

# Late data older than this (in days after its event day) is not expected; sources' tolerances are smaller.
LATE_ARRIVAL_DAYS = 7


@dataclass(frozen=True, kw_only=True)
class CuratedTable:
    name: str
    description: str
    contract: type[pa.DataFrameModel]
    partition_column: str
    # SELECT of the window's rows; `$start` and `$end` become the window's first and last day.
    sql: str
    # Upstream tables whose new partitions trigger this one.
    reads: tuple[str, ...]
    # Which days of a partitioned upstream a partition reads, as offsets from its own day:
    # (0, 0) the same day; (-30, -1) the 30 days before it. A late upstream day D then updates
    # exactly the partitions whose window holds D (D+1 … D+30 for (-30, -1)).
    reads_days: tuple[int, int] = (0, 0)
    # Upstream tables that must exist with passing checks but do not trigger it (e.g. a dimension
    # that changes daily and would otherwise rebuild every partition).
    gated_by: tuple[str, ...] = ()
    # The entity key columns (e.g. user_id); the run's metadata counts distinct entities.
    entity_columns: tuple[str, ...] = ()
    # How many latest days automation keeps current, when reads_days cannot tell: an unpartitioned
    # upstream (a dimension's history) updates every partition at once, though a refresh can only
    # change the latest days. None: derived from reads_days (see `automated_days`).
    recent_days: int | None = None
    owner: str = "team:ml-platform"
    group: str = "features"

    def __post_init__(self):
        columns = tc.column_names(self.contract)
        for role, column in (
            ("partition_column", self.partition_column),
            *(("entity column", c) for c in self.entity_columns),
        ):
            if column not in columns:
                raise ValueError(
                    f"curated table {self.name}: {role} {column!r} is not a column of {self.contract.__name__}"
                )
        if "$start" not in self.sql or "$end" not in self.sql:
            raise ValueError(f"curated table {self.name}: its SQL must select the window with $start and $end")
        if self.reads_days[0] > self.reads_days[1]:
            raise ValueError(f"curated table {self.name}: reads_days must be (first, last) with first <= last")

    @property
    def automated_days(self) -> int | None:
        """How many latest days automation keeps current: all for a same-day table. For a window:
        data at most LATE_ARRIVAL_DAYS old changes partitions from its day + 1 up to today (later
        ones do not exist yet), so the latest LATE_ARRIVAL_DAYS + 1 days (see `ml_platform.automation`)."""
        if self.recent_days is not None:
            return self.recent_days
        first, _ = self.reads_days
        return None if first >= 0 else LATE_ARRIVAL_DAYS + 1

    @property
    def trigger_days(self) -> tuple[int, int]:
        """Which upstream days' updates request a partition, as offsets: the days it reads."""
        return self.reads_days

    @property
    def table(self) -> ContractTable:
        return ContractTable(self.name, self.contract, self.partition_column)

    def select_sql(self, window) -> str:
        return sql.render(self.sql, start=window[0], end=window[1])

    def write(self, con, window, empty: bool = False) -> dict[str | None, int]:
        """Replace the window's rows in the caller's transaction (with none when `empty`); the
        rows per partition."""
        rows = f"SELECT * FROM {sql.ident(self.name)} WHERE FALSE" if empty else self.select_sql(window)
        return self.table.replace(con, window, rows)


def curated_asset(curated: CuratedTable) -> dg.AssetsDefinition:
    key = dg.AssetKey(curated.name)
    partitions_def = daily_partitions()
    table = curated.table
    ignore = dg.AssetSelection.assets(*curated.gated_by) if curated.gated_by else None

    # Single-run range backfills: one set-based write per range (see dagster_previews).
    with acknowledged("backfill_policy"):

        @dg.asset(
            name=curated.name,
            group_name=curated.group,
            kinds={"duckdb", "pandera"},
            deps=[*(_read_dep(key, curated.trigger_days) for key in curated.reads), *curated.gated_by],
            partitions_def=partitions_def,
            backfill_policy=dg.BackfillPolicy.single_run(),
            pool=WAREHOUSE_POOL,
            owners=[curated.owner],
            description=curated.description,
            metadata={
                "dagster/column_schema": tc.table_schema(curated.contract),
                "dagster/table_name": curated.name,
                "contract": curated.contract.__name__,
            },
            check_specs=[contract_check_spec(key, curated.contract, partitions_def)],
            automation_condition=on_upstream_update(
                ignore=ignore, recent_days=curated.automated_days, runs_with_deps=curated.trigger_days == (0, 0)
            ),
        )
        def _curated(context: dg.AssetExecutionContext, warehouse: Warehouse):
            window = run_window(context)
            with warehouse.transaction() as con:
                missing = [t for t in (*curated.reads, *curated.gated_by) if not table_exists(con, t)]
                if missing:
                    # Automation can start this run before the first run of an upstream table in
                    # the same tick has written it; it is requested again once that table updates.
                    context.log.warning(f"{curated.name}: {missing} not materialized yet; the window is written empty")
                partition_rows = curated.write(con, window, empty=bool(missing))
                metadata = {}
                if curated.entity_columns:
                    metadata["entities"] = con.execute(
                        f"SELECT count(DISTINCT ({sql.columns_list(curated.entity_columns)}))"
                        f" FROM ({table.relation(window)})"
                    ).fetchone()[0]
            context.log.info(f"{curated.name} {window_label(window)}: {sum(partition_rows.values())} rows")
            verdicts = evaluate_contract(warehouse, table, window, window_keys(window))
            yield from publish_contract_table(context, warehouse, table, window, partition_rows, verdicts, metadata)

    return _curated


def _read_dep(key: str, days: tuple[int, int]) -> dg.AssetDep | str:
    if days == (0, 0):
        return key
    # Windows reach before the first partition on the first days: those days simply hold nothing.
    with acknowledged("allow_nonexistent_upstream_partitions"):
        mapping = dg.TimeWindowPartitionMapping(
            start_offset=days[0], end_offset=days[1], allow_nonexistent_upstream_partitions=True
        )
    return dg.AssetDep(key, partition_mapping=mapping)
