"""A curated table declared as data: its SQL, its contract, what it reads. The asset is derived.

`CuratedTable` names the table, its Pandera contract (schema, rules, docs, UI column schema,
blocking check), its partition column and the SQL that computes a window of partitions from
the clean layer (a template using `$start` and `$end`, the window's first and last day). The
factory makes it a daily-partitioned asset in the `features` group, written through the shared
writer (atomic window replace, per-partition counts, contract check per partition), updated by
the same declarative automation as the clean layer.

What a partition reads is declared once (`reads`, each a table name or an `automation.Read`):
the days of each upstream table, all the history before it, the snapshot history as of a day.
The Dagster dependencies, the automation (a partition is rebuilt when anything it reads is newer
than it) and the consistency audit (`curated.audit`) all come from that declaration, and
`platform_tests/test_declared_reads.py` proves, table by table, that the SQL reads nothing else.
"""

from dataclasses import dataclass, field

import dagster as dg
import pandera.ibis as pa

from ml_platform import privacy
from ml_platform.automation import NOT_FINAL, Read, mapping_window, on_upstream_update
from ml_platform.checks.contract import contract_check_spec, evaluate_contract, publish_contract_table
from ml_platform.checks.drift import DRIFT_CHECK, judge_drift
from ml_platform.checks.privacy import PRIVACY_CHECK, RawPersonal, evaluate_privacy, privacy_check_spec
from ml_platform.checks.verdicts import worst
from ml_platform.contracts import table_contract as tc
from ml_platform.contracts.freshness import FreshnessRule
from ml_platform.contracts.quality_rules import DriftRule
from ml_platform.contracts.writer import ContractTable, table_exists
from ml_platform.curated.export import export_partitions
from ml_platform.dagster_previews import acknowledged
from ml_platform.partitions import daily_partitions, run_window, window_keys, window_label
from ml_platform.results import CheckOutcome
from ml_platform.storage.aws import aws_access
from ml_platform.storage.location import s3_location
from ml_platform.warehouse import WAREHOUSE_POOL, Warehouse, sql

# Late data older than this (in days after its event day) is not expected; sources' tolerances are smaller.
LATE_ARRIVAL_DAYS = 7
# An open end of a window of days (all history before a day, every day after it), in days: longer
# than any partitioned history the platform keeps.
OPEN_DAYS = 36_600


@dataclass(frozen=True, kw_only=True)
class CuratedTable:
    name: str
    description: str
    contract: type[pa.DataFrameModel]
    partition_column: str
    # SELECT of the window's rows; `$start` and `$end` become the window's first and last day.
    sql: str
    # Everything a partition reads: a table name (its days per `reads_days`) or a `Read` (other
    # days of it, all history before, a snapshot history as of a day: see `ml_platform.automation`).
    # An update of anything read requests the partitions that read it.
    reads: tuple[str | Read, ...]
    # Which days of a partitioned upstream named in `reads` a partition reads, as offsets from its
    # own day: (0, 0) the same day; (-30, -1) the 30 days before it; (None, -1) every day before it.
    # A late upstream day D then updates exactly the partitions whose window holds D.
    reads_days: tuple[int | None, int | None] = (0, 0)
    # The entity key columns (e.g. user_id); the run's metadata counts distinct entities.
    entity_columns: tuple[str, ...] = ()
    # How many latest days automation keeps current, when the reads cannot tell: a snapshot history
    # read as of a day before changes only the latest days when it is refreshed. None: derived from
    # the reads (see `automated_days`).
    recent_days: int | None = None
    # How long it may go without an update before the UI shows it overdue (Dagster's freshness
    # policy). None: derived from the tables it reads (`quality.freshness.derived_rule`).
    freshness: FreshnessRule | None = None
    # Each feature's distribution against the days before it (the `drift` check); None: off.
    drift: DriftRule | None = field(default_factory=DriftRule)
    # The drift check's warm-up: the first days of a table whose rows aggregate windows of days
    # before their own hold partial windows that grow as history fills up, which is not drift.
    # None: the longest bounded window of days it reads (a table reading all history before its
    # day says the windows its features aggregate, e.g. 30).
    drift_warmup_days: int | None = None
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
        first, last = self.reads_days
        if first is not None and last is not None and first > last:
            raise ValueError(f"curated table {self.name}: reads_days must be (first, last) with first <= last")
        if not self.inputs:
            raise ValueError(f"curated table {self.name}: reads must name what it reads")

    @property
    def inputs(self) -> tuple[Read, ...]:
        """Everything a partition reads, each as a `Read`."""
        return tuple(Read.days(r, *self.reads_days) if isinstance(r, str) else r for r in self.reads)

    @property
    def upstream_tables(self) -> list[str]:
        """The tables read, each once, in the order declared."""
        return list(dict.fromkeys(r.table for r in self.inputs))

    @property
    def source_tables(self) -> list[str]:
        """The tables whose landing paces this one (its freshness): what it reads by days, not a
        snapshot history it joins nor a label's clock."""
        return list(dict.fromkeys(r.table for r in self.inputs if not r.as_of and not r.until_final))

    @property
    def same_day_tables(self) -> list[str]:
        """Upstream tables of which a partition reads exactly its own day: they may run in the same
        run (see `ml_platform.automation.on_upstream_update`)."""
        by_table: dict[str, list[Read]] = {}
        for read in self.inputs:
            by_table.setdefault(read.table, []).append(read)
        return [t for t, reads in by_table.items() if all(r.windowed and (r.first, r.last) == (0, 0) for r in reads)]

    @property
    def automated_days(self) -> int | None:
        """How many latest days automation keeps current: all for a same-day table. For a window of
        days before: data at most LATE_ARRIVAL_DAYS old changes partitions from its day + 1 up to
        today (later ones do not exist yet), so the latest LATE_ARRIVAL_DAYS + 1 days (see
        `ml_platform.automation`)."""
        if self.recent_days is not None:
            return self.recent_days
        reaches_back = any(r.windowed and (r.first is None or r.first < 0) for r in self.inputs)
        return LATE_ARRIVAL_DAYS + 1 if reaches_back else None

    @property
    def warmup_days(self) -> int:
        """The drift check's warm-up (`drift_warmup_days`): by default the days a partition reaches
        back, 0 for the same day."""
        if self.drift_warmup_days is not None:
            return self.drift_warmup_days
        firsts = [r.first for r in self.inputs if r.windowed and not r.until_final]
        bounded = [-f for f in firsts if f is not None and f < 0]
        return max(bounded, default=0)

    @property
    def table(self) -> ContractTable:
        return ContractTable(self.name, self.contract, self.partition_column)

    def select_sql(self, window) -> str:
        return sql.render(self.sql, start=window[0], end=window[1])

    def drift_columns(self) -> tuple[list[str], list[str]]:
        """The (numeric, text) columns the drift check watches: the rule's, or every one that is
        neither a key nor the partition."""
        keys = {self.partition_column, *self.entity_columns}
        chosen = self.drift.columns if self.drift and self.drift.columns else None
        numeric, text = [], []
        for column in tc.columns(self.contract):
            if (chosen is not None and column.name not in chosen) or (chosen is None and column.name in keys):
                continue
            if column.duckdb_type in ("DOUBLE", "BIGINT", "INTEGER"):
                numeric.append(column.name)
            elif column.duckdb_type == "VARCHAR":
                text.append(column.name)
        return numeric, text

    def not_final_days(self, con, window) -> list[str]:
        """The window's partitions written before they are final (a label's; a table's never are)."""
        return []

    def write(self, con, window, empty: bool = False) -> dict[str | None, int]:
        """Replace the window's rows in the caller's transaction (with none when `empty`); the
        rows per partition. Personal columns go in pseudonymized or masked (`ml_platform.privacy`)."""
        if empty:
            return self.table.replace(con, window, f"SELECT * FROM {sql.ident(self.name)} WHERE FALSE")
        return self.table.replace(con, window, privacy.protect(con, self.contract, self.select_sql(window)))


def curated_asset(
    curated: CuratedTable, upstream_freshness: FreshnessRule | None = None, raw_personal: RawPersonal | None = None
) -> dg.AssetsDefinition:
    """`upstream_freshness`: the rule derived from what it reads, used unless the table declares one.
    `raw_personal`: the clean tables' personal columns, which its `privacy` check compares with."""
    key = dg.AssetKey(curated.name)
    partitions_def = daily_partitions()
    table = curated.table
    rule = curated.freshness or upstream_freshness

    # Single-run range backfills: one set-based write per range (see dagster_previews).
    with acknowledged("backfill_policy"):

        @dg.asset(
            name=curated.name,
            group_name=curated.group,
            kinds={"duckdb", "pandera"},
            deps=[_read_dep(table, curated.inputs) for table in curated.upstream_tables],
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
            check_specs=[
                contract_check_spec(key, curated.contract, partitions_def),
                privacy_check_spec(key, partitions_def),
                *([_drift_check_spec(key, curated.drift, partitions_def)] if curated.drift else []),
            ],
            automation_condition=on_upstream_update(
                curated.inputs, recent_days=curated.automated_days, same_day=tuple(curated.same_day_tables)
            ),
            freshness_policy=rule.policy() if rule else None,
        )
        def _curated(context: dg.AssetExecutionContext, warehouse: Warehouse):
            window = run_window(context)
            with warehouse.transaction() as con:
                missing = [t for t in curated.upstream_tables if not table_exists(con, t)]
                if missing:
                    # Automation can start this run before the first run of an upstream table in
                    # the same tick has written it; it is requested again once that table updates.
                    context.log.warning(f"{curated.name}: {missing} not materialized yet; the window is written empty")
                partition_rows = curated.write(con, window, empty=bool(missing))
                # Days written before they are final (a label's): observed as such after the write.
                not_final = curated.not_final_days(con, window) if not missing else window_keys(window)
                metadata = {}
                if curated.entity_columns:
                    metadata["entities"] = con.execute(
                        f"SELECT count(DISTINCT ({sql.columns_list(curated.entity_columns)}))"
                        f" FROM ({table.relation(window)})"
                    ).fetchone()[0]
            context.log.info(f"{curated.name} {window_label(window)}: {sum(partition_rows.values())} rows")
            verdicts = evaluate_contract(warehouse, table, window, window_keys(window))
            private = evaluate_privacy(warehouse, table, window, window_keys(window), raw_personal or {})
            checks = [CheckOutcome(PRIVACY_CHECK, *private, blocking=True)]
            if (location := s3_location()) is not None:
                metadata["lake_export"] = dg.MetadataValue.json(
                    _export(warehouse, location, curated, window_keys(window), [verdicts, private])
                )
            if curated.drift:
                with warehouse.read() as con:
                    checks.append(_drift_outcome(con, curated, window))
            yield from publish_contract_table(
                context,
                warehouse,
                table,
                window,
                partition_rows,
                verdicts,
                metadata,
                more_checks=checks,
            )
            for day in not_final:
                yield dg.AssetObservation(
                    asset_key=key,
                    partition=day,
                    metadata={NOT_FINAL: "written empty: its outcome's data has not settled yet"},
                )

    return _curated


def _export(warehouse: Warehouse, location, curated: CuratedTable, days: list[str], blocking: list) -> dict:
    """Export the run's partitions to the S3 prefix (`curated.export`): those whose blocking
    checks passed; the others' files are removed."""

    def failed(day: str) -> bool:
        for run_verdict, partition_verdicts in blocking:
            verdict = partition_verdicts.get(day, run_verdict)
            if not verdict.passed and verdict.severity == dg.AssetCheckSeverity.ERROR:
                return True
        return False

    withheld = [day for day in days if failed(day)]
    passed = [day for day in days if day not in withheld]
    with warehouse.read() as con:
        return export_partitions(con, location, aws_access(), curated.name, curated.partition_column, passed, withheld)


def _drift_outcome(con, curated: CuratedTable, window) -> CheckOutcome:
    """The `drift` check's verdicts on the window's days. A table whose rows aggregate the days
    before their own (reads_days starting at -N) warms up for N days."""
    by_day = judge_drift(
        con,
        curated.drift,
        curated.name,
        curated.partition_column,
        *curated.drift_columns(),
        window,
        warmup_days=curated.warmup_days,
    )
    return CheckOutcome(DRIFT_CHECK, worst(by_day, {"partitions": len(by_day)}, DRIFT_CHECK), by_day, plotted=True)


def _drift_check_spec(key: dg.AssetKey, rule: DriftRule, partitions_def) -> dg.AssetCheckSpec:
    with acknowledged("partitions_def on an AssetCheckSpec"):
        return dg.AssetCheckSpec(
            name=DRIFT_CHECK, asset=key, partitions_def=partitions_def, description=rule.describe()
        )


def _read_dep(table: str, reads: tuple[Read, ...]) -> dg.AssetDep | str:
    """The Dagster dependency on `table`: the window of days covering every read of it (Dagster
    maps one window per dependency), or the whole table (a snapshot history, unpartitioned)."""
    windows = [r for r in reads if r.table == table and r.windowed]
    if not windows:
        return table
    first, last = mapping_window(windows)
    if (first, last) == (0, 0):
        return table
    if first is None and last is None:
        return dg.AssetDep(table, partition_mapping=dg.AllPartitionMapping())
    # Windows reach before the first partition (and after the last) on the edges: those days
    # simply hold nothing. An open end reaches back (or forward) further than any history.
    with acknowledged("allow_nonexistent_upstream_partitions"):
        mapping = dg.TimeWindowPartitionMapping(
            start_offset=-OPEN_DAYS if first is None else first,
            end_offset=OPEN_DAYS if last is None else last,
            allow_nonexistent_upstream_partitions=True,
        )
    return dg.AssetDep(table, partition_mapping=mapping)
