"""The consistency audit: each partition recomputed from what it declares it reads, and compared.

For every curated table (feature views and labels included) and each audited day, the audit:
1. copies out of the warehouse (read-only, briefly) the rows the table's partitions declare they
   read (`CuratedTable.inputs`: the upstream days of each window, the snapshot versions valid on
   the as-of days, a label's clock) and the rows the warehouse holds for those days;
2. in a scratch in-memory database, for one day at a time, shows the table's SQL *only* that day's
   declared rows under the upstream tables' names, and writes the partition through the same
   writer as the asset (contract types, pseudonyms);
3. compares the result with the warehouse's partition, row by row (every column, exactly).

A partition that differs is reported with the reason found in Dagster's event log: never built,
stale (an input it reads was written after it was built: automation will rebuild it, unless the
day is older than automation keeps current), its last run failed, or built after everything it
reads and still different (changed outside the platform, or its code changed since).

Because the recomputation sees nothing but the declared inputs, the audit also proves the
declarations: a table whose SQL read an undeclared day would differ (`test_declared_reads.py`
relies on this). Run it with `python -m ml_platform audit --since 7d`; the `audit` check (never
blocking) runs it on a schedule inside the platform, and its figures reach the metrics endpoint.

Stream feature views (`curated.stream_view`, `declarations/stream_features`) are not audited: they
are no SQL over declared days. Each run of their source's lag sensor applies every micro-batch a
view has not applied yet (`curated.stream_update`), writing one row per batch that brought an entity
new events, stamped with the online store's write time; a partition's rows depend on where the
micro-batches were cut and when they were served, which no recomputation from the day's raw rows
reproduces. Nor can they be left stale: they are not automated, and every run of their source
applies every batch not yet applied. `test_stream_features.py` checks their values exactly, batch by
batch, and `test_online_offline.py` that every online lookup equals the training value.
"""

# No `from __future__ import annotations`: Dagster reads the check's `context` annotation at definition time.
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb

from ml_platform.automation import Read
from ml_platform.checks.audit import AUDIT_CHECK, DESCRIPTION, Finding, audit_verdict
from ml_platform.contracts.writer import scratch_tables
from ml_platform.curated.table import CuratedTable
from ml_platform.results import Verdict
from ml_platform.warehouse import WAREHOUSE_POOL, Warehouse, sql
from ml_platform.warehouse.resource import lake_access, retry_on_lock, scratch_connection

VALID_FROM, VALID_TO = "valid_from", "valid_to"


@dataclass
class TableAudit:
    """One table's audit: the days checked and the partitions that differ."""

    table: str
    checked: list[str]
    findings: list[Finding]

    @property
    def verdict(self) -> Verdict:
        return audit_verdict(self.checked, self.findings)


def audit_tables(
    warehouse_path: str | Path,
    tables: list[CuratedTable],
    partition_columns: dict[str, str],
    days: list[dt.date],
    instance: dg.DagsterInstance | None = None,
) -> list[TableAudit]:
    """Audit `days` of every table. `partition_columns`: each partitioned upstream table's partition
    column (clean tables by their source's spec); `instance`: where the reasons come from."""
    results = []
    # The recomputation writes the scratch database's own tables, never the lake.
    with scratch_tables():
        for table in tables:
            con = scratch_connection()
            try:
                lake_access(con)  # the warehouse's views of lake tables scan them
                _attach(con, warehouse_path)
                present = _copy_inputs(con, table, partition_columns, days)
                con.execute("DETACH wh")
                findings, checked = [], []
                newest = max(days)
                for day in days:
                    if not _responsible(con, instance, table, day, newest):
                        continue  # history automation does not keep: a backfill's business
                    checked.append(day)
                    finding = _audit_day(con, table, present, partition_columns, day)
                    if finding is not None:
                        only_in_warehouse, only_in_recompute = finding
                        reason = (
                            _reason(instance, table, day, partition_columns)
                            if instance
                            else "no Dagster instance given"
                        )
                        findings.append(
                            Finding(table.name, day.isoformat(), only_in_warehouse, only_in_recompute, reason)
                        )
                results.append(TableAudit(table.name, [d.isoformat() for d in checked], findings))
            finally:
                con.close()
    return results


def _attach(con: duckdb.DuckDBPyConnection, path: str | Path) -> None:
    """Attach the warehouse read-only, waiting while a writer holds it (as every connect does)."""
    retry_on_lock(lambda: con.execute(f"ATTACH {sql.literal(str(path))} AS wh (READ_ONLY)"))


def _wh_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """A table of the warehouse, or its view of a lake table."""
    return bool(
        con.execute(
            "SELECT (SELECT count(*) FROM duckdb_tables() WHERE database_name = 'wh' AND schema_name = 'main'"
            " AND table_name = $1) + (SELECT count(*) FROM duckdb_views() WHERE database_name = 'wh'"
            " AND schema_name = 'main' AND view_name = $1)",
            [table],
        ).fetchone()[0]
    )


def _declared_rows(read: Read, column: str | None, first_day: dt.date, last_day: dt.date) -> str:
    """WHERE condition selecting the rows `read` declares for the days `first_day` .. `last_day`
    (a window of consecutive days: the union of the days' windows is one window)."""
    if read.as_of:
        days = [first_day + dt.timedelta(days=i) for i in range((last_day - first_day).days + 1)]
        valid_on = sorted({day + dt.timedelta(days=offset) for day in days for offset in read.as_of})
        return "(" + " OR ".join(_valid_on(d) for d in valid_on) + ")"
    if not read.windowed or column is None:
        return "TRUE"
    bounds = []
    if read.first is not None:
        bounds.append(f"{sql.ident(column)} >= {sql.literal(first_day + dt.timedelta(days=read.first))}")
    if read.last is not None:
        bounds.append(f"{sql.ident(column)} <= {sql.literal(last_day + dt.timedelta(days=read.last))}")
    return " AND ".join(bounds) or "TRUE"


def _valid_on(day: dt.date) -> str:
    return (
        f"({sql.ident(VALID_FROM)} <= {sql.literal(day)}"
        f" AND coalesce({sql.ident(VALID_TO)}, DATE '9999-12-31') > {sql.literal(day)})"
    )


def _copy_inputs(
    con: duckdb.DuckDBPyConnection, table: CuratedTable, columns: dict[str, str], days: list[dt.date]
) -> set[str]:
    """Copy into the scratch database the declared inputs of every audited day (schema `inputs`)
    and the warehouse's rows of those days (schema `held`); the upstream tables that exist."""
    con.execute("CREATE SCHEMA IF NOT EXISTS inputs")
    con.execute("CREATE SCHEMA IF NOT EXISTS held")
    present = set()
    for upstream in table.upstream_tables:
        if not _wh_exists(con, upstream):
            continue
        present.add(upstream)
        reads = [r for r in table.inputs if r.table == upstream]
        where = " OR ".join(f"({_declared_rows(r, columns.get(upstream), min(days), max(days))})" for r in reads)
        con.execute(
            f"CREATE TABLE inputs.{sql.ident(upstream)} AS SELECT * FROM wh.main.{sql.ident(upstream)} WHERE {where}"
        )
    table.table.create(con)  # the contract's DDL, empty: the held rows are copied into it
    con.execute(f"CREATE TABLE held.{sql.ident(table.name)} AS SELECT * FROM main.{sql.ident(table.name)} LIMIT 0")
    if _wh_exists(con, table.name):
        con.execute(
            f"INSERT INTO held.{sql.ident(table.name)} BY NAME SELECT * FROM wh.main.{sql.ident(table.name)}"
            f" WHERE {sql.ident(table.partition_column)} BETWEEN {sql.literal(min(days))} AND {sql.literal(max(days))}"
        )
    con.execute(f"DROP TABLE main.{sql.ident(table.name)}")
    return present


def _responsible(
    con: duckdb.DuckDBPyConnection,
    instance: dg.DagsterInstance | None,
    table: CuratedTable,
    day: dt.date,
    newest: dt.date,
) -> bool:
    """Whether the day is audited: a partition that was built (its rows are compared), or one
    automation keeps current (a missing one is reported). An older day never built is left to a
    backfill, as automation leaves it (`CuratedTable.automated_days`)."""
    if table.automated_days is None or (newest - day).days < table.automated_days:
        return True
    if instance is not None:
        return _latest(instance, dg.AssetKey(table.name), day.isoformat()) is not None
    column = sql.ident(table.partition_column)
    held = f"held.{sql.ident(table.name)}"
    return bool(con.execute(f"SELECT count(*) FROM {held} WHERE {column} = {sql.literal(day)}").fetchone()[0])


def _audit_day(
    con: duckdb.DuckDBPyConnection, table: CuratedTable, present: set[str], columns: dict[str, str], day: dt.date
) -> tuple[int, int] | None:
    """Recompute `day` from its declared inputs only; (rows only in the warehouse, rows only in the
    recomputation), or None when they are equal."""
    for upstream in table.upstream_tables:
        con.execute(f"DROP VIEW IF EXISTS main.{sql.ident(upstream)}")
        if upstream in present:
            reads = [r for r in table.inputs if r.table == upstream]
            where = " OR ".join(f"({_declared_rows(r, columns.get(upstream), day, day)})" for r in reads)
            con.execute(
                f"CREATE VIEW main.{sql.ident(upstream)} AS SELECT * FROM inputs.{sql.ident(upstream)} WHERE {where}"
            )
    for leftover in (table.name, f"{table.name}__frontier"):
        con.execute(f"DROP TABLE IF EXISTS main.{sql.ident(leftover)}")
    window = (day, day)
    # As the asset does: an upstream table not written yet leaves the partition empty. (The base
    # class's write: a view's frontier is not this partition's business.)
    CuratedTable.write(table, con, window, empty=any(t not in present for t in table.upstream_tables))
    rebuilt = f"SELECT * FROM main.{sql.ident(table.name)}"
    held = f"SELECT * FROM held.{sql.ident(table.name)} WHERE {sql.ident(table.partition_column)} = {sql.literal(day)}"
    only_held = con.execute(f"SELECT count(*) FROM ({held} EXCEPT ALL {rebuilt})").fetchone()[0]
    only_rebuilt = con.execute(f"SELECT count(*) FROM ({rebuilt} EXCEPT ALL {held})").fetchone()[0]
    return None if only_held == only_rebuilt == 0 else (only_held, only_rebuilt)


def _reason(instance: dg.DagsterInstance, table: CuratedTable, day: dt.date, columns: dict[str, str]) -> str:
    """Why a partition differs, from the event log: never built, stale since which input, failed,
    or changed outside the platform."""
    key = dg.AssetKey(table.name)
    partition = day.isoformat()
    own = _latest(instance, key, partition)
    if own is None:
        return "never built, though its inputs give rows"
    planned = instance.get_latest_planned_materialization_info(key, partition)
    if planned is not None and planned.storage_id > own.storage_id:
        run = instance.get_run_by_id(planned.run_id)
        if run is not None and run.status == dg.DagsterRunStatus.FAILURE:
            return f"its last run {planned.run_id[:8]} failed; the rows are from {_when(own)}"
        if run is not None and not run.is_finished:
            return f"being rebuilt (run {planned.run_id[:8]})"
    newest = None
    for read in table.inputs:
        for upstream_partition in _input_partitions(instance, read, day):
            record = _latest(instance, dg.AssetKey(read.table), upstream_partition)
            newer = record is not None and record.storage_id > own.storage_id
            if newer and (newest is None or record.storage_id > newest[1].storage_id):
                newest = (read.table, record)
    if newest is not None:
        upstream, record = newest
        part = f" {record.partition_key}" if record.partition_key else ""
        return f"stale since {upstream}{part} was written at {_when(record)}, after this partition ({_when(own)})"
    return (
        f"built at {_when(own)}, after everything it reads, yet different: the warehouse was changed "
        "outside the platform, or the table's code changed since"
    )


def _input_partitions(instance: dg.DagsterInstance, read: Read, day: dt.date) -> list[str | None]:
    """The upstream partitions `read` declares for `day` that have been materialized."""
    if not read.windowed:
        return [None]
    materialized = instance.get_latest_storage_id_by_partition(
        dg.AssetKey(read.table), dg.DagsterEventType.ASSET_MATERIALIZATION
    )
    first = None if read.first is None else day + dt.timedelta(days=read.first)
    last = None if read.last is None else day + dt.timedelta(days=read.last)
    return [
        p
        for p in materialized
        if (first is None or dt.date.fromisoformat(p) >= first) and (last is None or dt.date.fromisoformat(p) <= last)
    ]


def _latest(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None):
    records_filter = dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None)
    records = instance.fetch_materializations(records_filter, limit=1).records
    return records[0] if records else None


def _when(record) -> str:
    return dt.datetime.fromtimestamp(record.timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def audited_days(table: CuratedTable, today: dt.date, since_days: int | None = None) -> list[dt.date]:
    """The days an audit looks at: the last `since_days` (default: those automation keeps current,
    at least a week), up to today."""
    days = since_days or max(table.automated_days or 0, 7)
    return [today - dt.timedelta(days=i) for i in range(days - 1, -1, -1)]


def audit_check(table: CuratedTable, partition_columns: dict[str, str]) -> dg.AssetChecksDefinition:
    """The `audit` check of one curated table (never blocking), run by the audit schedule."""

    @dg.asset_check(
        asset=dg.AssetKey(table.name),
        name=AUDIT_CHECK,
        blocking=False,
        description=DESCRIPTION,
        # Its reads hold the warehouse file like a writer's would: one at a time with the writers.
        pool=WAREHOUSE_POOL,
    )
    def _audit(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
        today = dt.datetime.now(dt.UTC).date()
        [result] = audit_tables(
            warehouse.database, [table], partition_columns, audited_days(table, today), context.instance
        )
        return result.verdict.result()

    return _audit
