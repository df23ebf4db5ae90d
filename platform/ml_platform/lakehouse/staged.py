"""Writing a lake table from inside a warehouse transaction: the rows are written as the table's new
files at once, read back as the table's new state by the rest of the transaction (its checks), and
committed to the lake table just before the warehouse commits.

`stage` takes the rows of a partition replace, as a SELECT in the table's columns and types:
- they are written in one pass as one Parquet file per day under the table's location, under names
  no other write uses (`tables.write_partition_files`); nothing is committed yet;
- the warehouse's view of the table (`<table>`, over the lake table's current files) is shadowed,
  for this connection only, by a temporary view of the same name: the table with the replaced days
  taken out and the new files in. Everything after it in the transaction (counts, contract checks,
  previews) reads the new state, as it did with a DuckDB table;
- a table without partitions (a snapshot history, a training set, a frontier: `stage_whole`) is
  written as one new file and replaced whole; the shadow is that file;
- at COMMIT (`Warehouse.transaction()`'s `before_commit`), the staged replaces are committed to
  their lake tables, all in one commit of the catalog (`replace.replace_together`: only metadata is
  written; every table new, or none), the shadows dropped and the
  warehouse's view pointed at the new snapshot's files (`scan.scan_sql`), all before the warehouse
  transaction commits. A transaction that rolls back before its commit to the lake (a refused
  write, a failing check) removes the files it wrote (`after_rollback`) and leaves the table as it
  was; one failing after it leaves the lake table new and the warehouse's view old until the days
  are written again.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import duckdb

from ml_platform.lakehouse import replace, tables, views
from ml_platform.warehouse import sql
from ml_platform.warehouse.resource import after_rollback, before_commit


@dataclass
class _Staged:
    name: str
    partition_column: str | None  # None: a table replaced whole
    days: list[dt.date] | None  # None: every row of the table
    files: list[str]
    scope: tuple[str, str] | None
    read_from: tuple[tuple[str, int | None], ...] = ()  # see `replace.Replacement`

    @property
    def whole(self) -> bool:
        return self.partition_column is None

    def replaced(self) -> str:
        """The rows of the table this replace takes out."""
        if self.whole:
            return "TRUE"
        if not self.days:
            return "FALSE"
        days = sql.in_window(self.partition_column, (self.days[0], self.days[-1]))
        return f"({sql.ident(self.scope[0])} = {sql.literal(self.scope[1])} AND {days})" if self.scope else days


# Connection id -> the replaces staged in its open transaction, not yet committed to the lake.
_PENDING: dict[int, list[_Staged]] = {}


def stage(
    con: duckdb.DuckDBPyConnection,
    name: str,
    partition_column: str | None,
    select_sql: str,
    days: list[dt.date] | None,
    scope: tuple[str, str] | None = None,
    read_from: tuple[str, ...] = (),
) -> int:
    """`select_sql`'s rows replace `days` of lake table `name` (None: every day the table or the rows
    hold) when the warehouse transaction commits; until then this connection reads `name` as
    replaced. `scope` (column, value): only the days' rows with that value are replaced, in a table
    several writers share (`tables.ensure_table`). Without a `partition_column` the rows replace
    the whole table (`stage_whole`: `read_from`, the other tables they were computed from). Returns
    the rows written."""
    if id(con) not in _PENDING:
        before_commit(con, publish)  # refused outside Warehouse.transaction()
        connection_id = id(con)
        after_rollback(con, lambda: _discard(connection_id))
        _PENDING[connection_id] = []
    pending = _PENDING[id(con)]
    if any(staged.name == name and staged.scope == scope for staged in pending):
        # Its first write's files would be replaced by the second write's, and its days lost.
        raise RuntimeError(
            f"{name} is written twice in one transaction: a lake table takes one replace per transaction"
        )
    scope_column = scope[0] if scope else None
    rows, written = tables.write_partition_files(
        con, name, f"({select_sql})", partition_column, uuid.uuid4().hex, scope_column
    )
    files = [file for day_files in written.values() for file in day_files]
    staged = _Staged(name, partition_column, [], files, scope)
    pending.append(staged)  # from here on, a rollback removes its files
    if staged.whole:
        staged.days = None
        # Computed from the table as this transaction read it (and `read_from`'s): if another writer
        # commits one of them first, the commit is refused, not redone over theirs.
        staged.read_from = tuple((table, views.read_snapshot(con, table)) for table in (name, *read_from))
        _shadow_whole(con, staged, select_sql)
        return rows
    column = sql.ident(partition_column)
    if days is None:
        within = f" AND {sql.ident(scope[0])} = {sql.literal(scope[1])}" if scope else ""
        current = con.execute(
            f"SELECT DISTINCT {column} FROM {sql.ident(name)} WHERE {column} IS NOT NULL{within}"
        ).fetchall()
        days = sorted({day for (day,) in current} | {day for day in written if day is not None})
    if not days and not files:
        pending.remove(staged)  # nothing to replace, nothing written
        return rows
    staged.days = list(days)
    _shadow(con, name, [entry for entry in pending if entry.name == name])
    return rows


def stage_whole(con: duckdb.DuckDBPyConnection, name: str, select_sql: str, read_from: tuple[str, ...] = ()) -> int:
    """`select_sql`'s rows become the whole of lake table `name` (made from them if new, an
    unpartitioned table) when the warehouse transaction commits; until then this connection reads
    `name` as them. The commit is refused (`replace.StaleRead`) if another writer committed `name`,
    or one of the tables `read_from` the rows were computed from, after this transaction read it.
    Returns the rows written."""
    return stage(con, name, None, select_sql, None, read_from=read_from)


def _shadow_whole(con: duckdb.DuckDBPyConnection, staged: _Staged, select_sql: str) -> None:
    """This connection's view of a table replaced whole: its new file, or no row in its columns."""
    if staged.files:
        rows = f"SELECT * FROM {read_files(staged.files)}"
    else:
        empty = sql.ident(f"_lake_staged_empty_{staged.name}")
        stored = tables.storable_select(con, f"({select_sql})")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {empty} AS {stored} FROM ({select_sql}) LIMIT 0")
        rows = f"SELECT * FROM {empty}"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {sql.ident(staged.name)} AS {rows}")


def _shadow(con: duckdb.DuckDBPyConnection, name: str, replaces: list[_Staged]) -> None:
    """This connection's view of `name` as `replaces` leave it: the warehouse's view without what
    they take out, plus the files they wrote."""
    database = con.execute("SELECT current_database()").fetchone()[0]
    replaced = " OR ".join(entry.replaced() for entry in replaces)
    files = [file for entry in replaces for file in entry.files]
    new_rows = f" UNION ALL BY NAME SELECT * FROM {read_files(files)}" if files else ""
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {sql.ident(name)} AS"
        f" SELECT * FROM {sql.qualified(database, 'main', name)} WHERE NOT coalesce({replaced}, FALSE){new_rows}"
    )


def read_files(files: list[str]) -> str:
    """The relation of files a write made (before any commit names them)."""
    listed = "[" + ", ".join(sql.literal(file) for file in files) + "]"
    return f"read_parquet({listed}, hive_partitioning = false, union_by_name = true)"


def publish(con: duckdb.DuckDBPyConnection) -> None:
    """Commit every staged replace to its lake table, all in one commit of the catalog
    (`replace.replace_together`: every table new, or none), and point the warehouse's views at them."""
    pending = _PENDING[id(con)]
    try:
        replace.replace_together(
            [replace.Replacement(s.name, s.days, s.files, s.scope, s.read_from) for s in pending], uuid.uuid4().hex
        )
    except replace.CommitConflicts:
        raise  # nothing was committed: the rollback removes the files
    except BaseException:
        # Maybe committed (a lost answer from the catalog's database): the files stay, and
        # housekeeping removes them if no snapshot names them.
        pending.clear()
        raise
    names = list(dict.fromkeys(staged.name for staged in pending))
    pending.clear()  # committed: their files are the tables' now, a rollback must keep them
    for name in names:
        con.execute(f"DROP VIEW temp.main.{sql.ident(name)}")
        if views.object_kind(con, name) == "TABLE":
            # A table replaced whole, held in the warehouse file before it moved to the lake: its
            # rows are replaced, the view takes its place.
            con.execute(f"DROP TABLE main.{sql.ident(name)}")
        # The newest metadata: this commit's, or a later one's (the view never goes back).
        views.point_view(con, name, tables.load_table(name))
    del _PENDING[id(con)]


def _discard(connection_id: int) -> None:
    """The files of every replace the rolled-back transaction staged and did not commit."""
    for staged in _PENDING.pop(connection_id, []):
        tables.remove_files(staged.name, staged.files)
