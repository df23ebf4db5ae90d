"""A run's working copy of lake tables: a DuckDB database of the run's own, where it works on plain
tables with plain SQL (INSERT, UPDATE, DELETE), as it would on the warehouse; at the end, what it
changed goes to the lake tables in one commit of the catalog (`replace.replace_together`: every
table new, or none).

The run says, per table, how its change is found:
- `diff`: the table's rows of a scope (a source) and of some days are copied in first; at the
  commit, the rows that differ from that copy say what changed. A run that only added rows appends
  them (no file of the table is rewritten); one that changed or removed rows replaces the days they
  are in with its rows of those days. For small tables read before they are written (ledgers,
  offsets): the run needs no rule of its own to say what it changed.
- `replaces`: the run rewrote whole days; its rows of those days replace them. Nothing is copied in.
  A run writing many rows writes them out as files while it works (`flush`, then `settle` once
  it has written its last: its reads then see them all), so it never holds more than about
  `FLUSH_ROWS` of them: the rows of a big day are not held in memory, or spilled, before their
  files are written.
- `appends`: every row the run's table holds is new. Nothing is copied in.

The tables may also be temporary tables of a warehouse transaction's connection, shadowing the
warehouse's views of the same names (a stream feature view's tables, changed row by row per
micro-batch): everything the working copy makes itself is temporary, and `drop` removes it.

Nothing here needs the warehouse file: a run reaches only the catalog and the table files. A run
killed at any moment leaves every table old or new; files of a commit that never happened are
removed (or, when its outcome is unknown, left to housekeeping, which removes files no snapshot
names).
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ml_platform.lakehouse import replace, tables
from ml_platform.lakehouse.scan import scan_sql
from ml_platform.warehouse import sql
from ml_platform.warehouse.resource import duckdb_config, lake_access
from ml_platform.warehouse.sql import DateWindow

DIFF, REPLACE, APPEND = "diff", "replace", "append"
# A table the run replaces days of is written as files once it holds this many rows (`flush`), so a
# run holds about this many of its rows in memory whatever it writes in all (a raw run of a big day).
FLUSH_ROWS = 500_000


@contextmanager
def run_database(run_id: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """The run's own DuckDB database: in memory, spilling to a temp folder of its own (removed
    afterwards) past the memory limit. Nothing in it outlives the run, so nothing is written to a
    database file: a file would write the rows twice (its log, then a checkpoint), and the lake's
    Parquet files are a third write."""
    folder = Path(tempfile.mkdtemp(prefix=f"ml_platform-run-{run_id[:8]}-"))
    try:
        con = duckdb.connect(config=duckdb_config({"temp_directory": str(folder / "spill")}))
        try:
            con.execute("SET TimeZone = 'UTC'")
            lake_access(con)  # S3 access when the lake's files are on S3
            yield con
        finally:
            con.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class Tracked:
    """A table of the working copy and how its change is found."""

    name: str
    mode: str  # DIFF, REPLACE or APPEND
    partition_column: str | None  # a date column; None: the table is replaced whole per scope
    scope: tuple[str, str] | None  # (column, value): the run's rows of a table others write too
    days: DateWindow | None  # DIFF: the days copied in (None: all); REPLACE: the days replaced

    def where(self) -> str:
        """The rows of the table this run holds (copied in, or replaces)."""
        conditions = []
        if self.scope:
            conditions.append(f"{sql.ident(self.scope[0])} = {sql.literal(self.scope[1])}")
        if self.days is not None and self.partition_column:
            conditions.append(sql.in_window(self.partition_column, self.days))
        return " AND ".join(conditions) or "TRUE"

    def base(self) -> str:
        """The table holding the rows copied in, as they were."""
        return sql.ident(f"_copied_{self.name}")


@dataclass(frozen=True)
class Committed:
    """What a working copy's commit did: per table, its commit (None: unchanged), and the attempts
    that lost a race to another writer."""

    commits: dict[str, replace.Commit | None]
    redone: int


class WorkingCopy:
    """Lake tables worked on in `con` (a run database), committed together by `commit`. Create each
    table in `con` (its DDL) before saying how it changes."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self.tracked: dict[str, Tracked] = {}
        self._existing: set[str] = set()  # lake tables found when their rows were copied in
        self._flushed: dict[str, list[str]] = {}  # a REPLACE table's files written before the commit
        self._settled: set[str] = set()  # REPLACE tables now views of their files
        self._read: dict[str, int | None] = {}  # the snapshot copied in, of each table copied whole

    def diff(
        self,
        name: str,
        partition_column: str | None,
        scope: tuple[str, str] | None = None,
        days: DateWindow | None = None,
    ) -> None:
        """Copy in the lake table's rows of `scope` and `days` (None: every day); the commit finds
        what changed by comparing with them."""
        tracked = self._track(Tracked(name, DIFF, partition_column, scope, days))
        table = tables.load_table(name)
        if table is not None:
            self._existing.add(name)
        if partition_column is None and scope is None:
            snapshot = table.current_snapshot() if table is not None else None
            self._read[name] = snapshot.snapshot_id if snapshot else None
        if table is not None and table.current_snapshot() is not None:
            held = {field.name for field in table.schema().fields}
            columns = ", ".join(sql.ident(c) for c in self._columns(name) if c in held)
            self.con.execute(
                f"INSERT INTO {sql.ident(name)} ({columns}) SELECT {columns} FROM {scan_sql(table)}"
                f" WHERE {tracked.where()}"
            )
        self.con.execute(f"CREATE TEMP TABLE {tracked.base()} AS SELECT * FROM {sql.ident(name)}")

    def replaces(
        self, name: str, partition_column: str, days: DateWindow, scope: tuple[str, str] | None = None
    ) -> None:
        """The run's rows of `days` replace the lake table's (its rows of `scope`'s)."""
        self._track(Tracked(name, REPLACE, partition_column, scope, days))

    def appends(self, name: str, partition_column: str, scope: tuple[str, str] | None = None) -> None:
        """Every row of the run's table is added to the lake table."""
        self._track(Tracked(name, APPEND, partition_column, scope, None))

    def flush(self, name: str, run_id: str, at_least: int | None = None) -> None:
        """Write the rows REPLACE table `name` holds as its files now if they are at least
        `at_least` (`FLUSH_ROWS` by default), and empty it: the commit adds its remaining rows'
        files to these. Until `settle`, the table holds only the rows added since the last flush."""
        tracked = self.tracked[name]
        if tracked.mode != REPLACE or name in self._settled:
            raise RuntimeError(f"{name}: only a table whose days the run replaces is flushed, before it is settled")
        table = sql.ident(name)
        threshold = FLUSH_ROWS if at_least is None else at_least
        if self.con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] < max(threshold, 1):
            return
        self._refuse_outside_days(tracked)
        written = self._write(tracked, run_id, f"SELECT * FROM {table}", days=None)  # days None: never None
        self._flushed.setdefault(name, []).extend(written.files)
        self.con.execute(f"DELETE FROM {table}")

    def settle(self, name: str, run_id: str) -> None:
        """Flush every row REPLACE table `name` holds; it is then a view of all the rows the run
        wrote (their files, read in the table's column types), for the run's reads. No row can be
        added after."""
        self.flush(name, run_id, at_least=1)
        table, held = sql.ident(name), sql.ident(f"_held_{name}")
        typed = ", ".join(
            f"CAST({sql.ident(column)} AS {kind}) AS {sql.ident(column)}"
            for column, kind, *_ in self.con.execute(f"DESCRIBE {table}").fetchall()
        )
        files = self._flushed.get(name)
        self.con.execute(f"ALTER TABLE {table} RENAME TO {held}")  # empty now; read when nothing was written
        rows = f"read_parquet([{', '.join(sql.literal(file) for file in files)}])" if files else held
        self.con.execute(f"CREATE VIEW {table} AS SELECT {typed} FROM {rows}")
        self._settled.add(name)

    def discard(self) -> None:
        """Remove the files written before a commit that will not happen (the run failed)."""
        for name, files in self._flushed.items():
            tables.remove_files(name, files)
        self._flushed.clear()

    def _refuse_outside_days(self, tracked: Tracked) -> None:
        outside = self.con.execute(
            f"SELECT count(*) FROM {sql.ident(tracked.name)} WHERE NOT ({tracked.where()})"
        ).fetchone()[0]
        if outside:
            raise RuntimeError(
                f"{tracked.name}: the run wrote {outside} row(s) outside the days it replaces ({tracked.days[0]}.."
                f"{tracked.days[1]}); nothing was committed"
            )

    def _track(self, tracked: Tracked) -> Tracked:
        if tracked.name in self.tracked:
            raise RuntimeError(f"{tracked.name} is already in the working copy")
        self.tracked[tracked.name] = tracked
        return tracked

    def _columns(self, name: str) -> list[str]:
        return [row[0] for row in self.con.execute(f"DESCRIBE {sql.ident(name)}").fetchall()]

    def commit(self, run_id: str) -> Committed:
        """Every table's change, written as new files and committed in one commit of the catalog."""
        replacements: list[replace.Replacement] = []
        try:
            for tracked in self.tracked.values():
                if (replacement := self._change(tracked, run_id)) is not None:
                    replacements.append(replacement)
        except BaseException:
            _remove(replacements)  # nothing is committed: a file could not be written, a rule refused
            self.discard()
            raise
        try:
            commits = replace.replace_together(replacements, run_id) if replacements else []
        except replace.CommitConflicts:
            _remove(replacements)  # every attempt lost: nothing was committed
            raise
        # Any other failure may have committed (a lost answer from the catalog's database): the
        # files stay, and housekeeping removes them if no snapshot names them.
        by_table = {commit.table: commit for commit in commits}
        return Committed(
            {name: by_table.get(name) for name in self.tracked}, max((c.redone for c in commits), default=0)
        )

    def _change(self, tracked: Tracked, run_id: str) -> replace.Replacement | None:
        """The replacement that commits `tracked`'s change (None: nothing changed), its files written."""
        name, table = tracked.name, sql.ident(tracked.name)
        self._refuse_foreign_scope(tracked)
        if tracked.mode == APPEND:
            return self._write(tracked, run_id, f"SELECT * FROM {table}", days=[])
        if tracked.mode == REPLACE:
            days = sql.window_days(tracked.days)
            flushed = self._flushed.pop(name, [])
            if name in self._settled:
                if not flushed:
                    self._ensure(tracked)  # no row written: the replace empties the days of a table that exists
                return replace.Replacement(name, days, flushed, tracked.scope)
            self._refuse_outside_days(tracked)
            try:
                rest = self._write(tracked, run_id, f"SELECT * FROM {table}", days=days)
            except BaseException:
                tables.remove_files(name, flushed)
                raise
            return replace.Replacement(name, days, [*flushed, *rest.files], tracked.scope)
        # Each difference computed once: counted, listed by day and written from these tables.
        added, removed = sql.ident(f"_added_{name}"), sql.ident(f"_removed_{name}")
        self.con.execute(
            f"CREATE TEMP TABLE {added} AS SELECT * FROM {table} EXCEPT ALL SELECT * FROM {tracked.base()}"
        )
        self.con.execute(
            f"CREATE TEMP TABLE {removed} AS SELECT * FROM {tracked.base()} EXCEPT ALL SELECT * FROM {table}"
        )
        if not self.con.execute(f"SELECT count(*) FROM {removed}").fetchone()[0]:
            if not self.con.execute(f"SELECT count(*) FROM {added}").fetchone()[0]:
                self._ensure(tracked)
                return None
            return self._write(tracked, run_id, f"SELECT * FROM {added}", days=[])
        if tracked.partition_column is None:
            return self._write(tracked, run_id, f"SELECT * FROM {table}", days=None)
        column = sql.ident(tracked.partition_column)
        days = sorted(
            day
            for (day,) in self.con.execute(
                f"SELECT DISTINCT {column} FROM (SELECT {column} FROM {added} UNION ALL SELECT {column} FROM {removed})"
            ).fetchall()
        )
        if tracked.days is not None and (days[0] < tracked.days[0] or days[-1] > tracked.days[1]):
            raise RuntimeError(
                f"{name}: the run changed rows of days it did not copy in ({days[0]}..{days[-1]}, copied"
                f" {tracked.days[0]}..{tracked.days[1]}); nothing was committed"
            )
        listed = ", ".join(sql.literal(day) for day in days)
        return self._write(tracked, run_id, f"SELECT * FROM {table} WHERE {column} IN ({listed})", days=days)

    def drop(self) -> None:
        """Drop the tracked tables and what the working copy made beside them (all temporary)."""
        for name in self.tracked:
            for table in (name, f"_copied_{name}", f"_added_{name}", f"_removed_{name}"):
                self.con.execute(f"DROP TABLE IF EXISTS temp.main.{sql.ident(table)}")

    def _refuse_foreign_scope(self, tracked: Tracked) -> None:
        if not tracked.scope:
            return
        column, value = tracked.scope
        foreign = self.con.execute(
            f"SELECT count(*) FROM {sql.ident(tracked.name)} WHERE {sql.ident(column)} IS DISTINCT FROM"
            f" {sql.literal(value)}"
        ).fetchone()[0]
        if foreign:
            raise RuntimeError(
                f"{tracked.name}: the run wrote {foreign} row(s) whose {column} is not {value!r}, rows of another"
                " writer; nothing was committed"
            )

    def _write(
        self, tracked: Tracked, run_id: str, select_sql: str, days: list[dt.date] | None
    ) -> replace.Replacement | None:
        scope_column = tracked.scope[0] if tracked.scope else None
        # Named by the run (its lineage), and new: a run's second commit never meets its first's files.
        file_name = f"{run_id}-{uuid.uuid4().hex[:8]}"
        rows, written = tables.write_partition_files(
            self.con, tracked.name, f"({select_sql})", tracked.partition_column, file_name, scope_column
        )
        files = [file for day_files in written.values() for file in day_files]
        if tracked.partition_column and None in written:
            tables.remove_files(tracked.name, files)
            raise RuntimeError(
                f"{tracked.name}: the run wrote rows without a {tracked.partition_column}; nothing was committed"
            )
        if days == [] and not files:
            return None  # nothing added
        # A table copied in whole: its change is refused, not redone, over another writer's commit.
        read_from = ((tracked.name, self._read[tracked.name]),) if tracked.name in self._read else ()
        return replace.Replacement(tracked.name, days, files, tracked.scope, read_from)

    def _ensure(self, tracked: Tracked) -> None:
        """The lake table exists (made from the run's table), so readers find it after the run."""
        if tracked.name not in self._existing and tables.load_table(tracked.name) is None:
            schema = self.con.execute(
                f"{tables.storable_select(self.con, sql.ident(tracked.name))} FROM {sql.ident(tracked.name)} LIMIT 0"
            )
            scope_column = tracked.scope[0] if tracked.scope else None
            tables.ensure_table(tracked.name, schema.to_arrow_table().schema, tracked.partition_column, scope_column)


def _remove(replacements: list[replace.Replacement]) -> None:
    """The files of replacements no commit names."""
    for replacement in replacements:
        tables.remove_files(replacement.table, list(replacement.files))
