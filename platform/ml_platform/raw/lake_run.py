"""Where a raw run writes: on the lake (the default), or in the warehouse's transaction
(`ML_PLATFORM_LAKE_TABLES=false`).

On the lake, a raw run of any source kind does its work (reading the source, accounting, checks)
on plain tables in a DuckDB database of its own (`lakehouse.working_copy`), outside the warehouse, so
runs of different days can work at once. What it wrote then goes to the lake in **one catalog
commit**: the raw table's days, and the source's rows of the bookkeeping tables every source shares
(`ingest_ledger`, `quarantined_files`, `rejected_lines`, `rejected_messages`, `stream_batches`,
`stream_offsets`), each scoped by source. A run killed at any moment leaves all of them old or all
new: a raw day is never there without its ledger rows, a stream's rows never without their offsets.

The source kind says how each table changes (`RawRun`): a file or API run replaces its days of
raw; a PostgreSQL run appends the versions its days did not hold; a stream run appends its batches
(or replaces the days it reads again). The bookkeeping tables' changes are found by comparing with
the rows copied in (the window's days, and for the ledger the days the schema check compares with).

Then one short warehouse transaction points the warehouse's views of those tables at their new
snapshots (readers of the warehouse see the days and their ledger rows at once), and counts the
raw table's rows for the run's metadata.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import duckdb

from ml_platform import settings
from ml_platform.lakehouse import views
from ml_platform.lakehouse.working_copy import Committed, WorkingCopy, run_database
from ml_platform.raw import quarantine, stream
from ml_platform.raw.spec import SourceSpec
from ml_platform.raw.table import LEDGER_TABLE, raw_partition_counts
from ml_platform.raw.value_kinds import HISTORY_DAYS
from ml_platform.warehouse import Warehouse, sql
from ml_platform.warehouse.sql import DateWindow

PARTITION_COLUMN = "landing_date"
SCOPE_COLUMN = "source"
# The tables every source shares, each source's rows scoped by its name: name -> date column
# (None: the table has no days, a source's rows are replaced whole).
SHARED_TABLES = {
    LEDGER_TABLE: PARTITION_COLUMN,
    quarantine.QUARANTINED_FILES_TABLE: PARTITION_COLUMN,
    quarantine.REJECTED_LINES_TABLE: PARTITION_COLUMN,
    quarantine.REJECTED_MESSAGES_TABLE: PARTITION_COLUMN,
    stream.BATCHES_TABLE: PARTITION_COLUMN,
    stream.OFFSETS_TABLE: None,
}


@dataclass
class RawRun:
    """The connection a raw run writes on, and how each table it writes changes.

    `con` is the run's own DuckDB file on the lake (the warehouse's transaction otherwise: then the
    `keeps…`/`replaces…`/`appends…` calls do nothing). Create each table on `con` (its DDL) before
    saying how it changes."""

    con: duckdb.DuckDBPyConnection
    spec: SourceSpec
    window: DateWindow
    run_id: str = ""
    copy: WorkingCopy | None = None
    committed: Committed | None = None
    # After a lake run: the raw table's rows per landing day of the window, and in all.
    partition_rows: dict[str, int] = field(default_factory=dict)
    total_rows: int = 0

    @property
    def on_lake(self) -> bool:
        return self.copy is not None

    def _scope(self) -> tuple[str, str]:
        return (SCOPE_COLUMN, self.spec.name)

    def keeps(self, table: str, days: DateWindow | None = None) -> None:
        """The source's rows of bookkeeping table `table` of `days` (the run's window by default)
        are copied in; what the run changes among them is committed."""
        if self.copy:
            self.copy.diff(table, PARTITION_COLUMN, self._scope(), days or self.window)

    def keeps_ledger(self) -> None:
        """The ledger rows of the window and of the days its schema check compares with."""
        self.keeps(LEDGER_TABLE, (self.window[0] - dt.timedelta(days=HISTORY_DAYS), self.window[1]))

    def keeps_all(self, table: str) -> None:
        """Every row of the source in `table`, a table without days (the stream's offsets)."""
        if self.copy:
            self.copy.diff(table, None, self._scope())

    def keeps_own(self, table: str, days: DateWindow | None = None) -> None:
        """A table of the source's own (no scope column), its rows of `days` copied in."""
        if self.copy:
            self.copy.diff(table, PARTITION_COLUMN, None, days or self.window)

    def replaces(self, table: str, days: DateWindow | None = None) -> None:
        """The run's rows of `days` (the window by default) replace the days of `table`, a table of
        the source's own (its raw table)."""
        if self.copy:
            self.copy.replaces(table, PARTITION_COLUMN, days or self.window)

    def flush(self, table: str) -> None:
        """Write the rows the run holds of `table` (one `replaces` names) as its files if they are
        many (`working_copy.FLUSH_ROWS`): call between batches of rows (a raw run's landed files),
        so the run holds about that many in memory whatever its days hold. Reads of `table` miss
        the rows written until `settle`."""
        if self.copy:
            self.copy.flush(table, self.run_id)

    def settle(self, table: str) -> None:
        """After the run's last row of `table`: reads of it see every row the run wrote."""
        if self.copy:
            self.copy.settle(table, self.run_id)

    def appends(self, table: str) -> None:
        """Every row the run writes to `table`, a table of the source's own, is new."""
        if self.copy:
            self.copy.appends(table, PARTITION_COLUMN)

    def counted(self, outcome):
        """`outcome` (a `RawOutcome` counted on `con`) with the raw table's rows as committed."""
        if not self.on_lake:
            return outcome
        return replace(outcome, partition_rows=self.partition_rows, total_rows=self.total_rows)

    def metadata(self) -> dict:
        """What the run's metadata shows of its lake commit: the raw table's snapshot, and the
        attempts that lost a race to another writer's commit."""
        if self.committed is None:
            return {}
        commit = self.committed.commits.get(self.spec.raw_table)
        return {
            "lake_snapshot_id": str(commit.snapshot_id) if commit else "unchanged",
            "lake_commits_redone": self.committed.redone,
        }


@contextmanager
def raw_run(
    warehouse: Warehouse, spec: SourceSpec, window: DateWindow, run_id: str, own_tables: tuple[str, ...] = ()
) -> Iterator[RawRun]:
    """The raw run's connection; on leaving, what it wrote is committed (see the module's text).
    `own_tables`: the source's tables besides its raw table (an API source's responses)."""
    if not settings.lake_tables():
        with warehouse.transaction() as con:
            yield RawRun(con, spec, window, run_id)
        return
    tables = [(name, column, SCOPE_COLUMN) for name, column in SHARED_TABLES.items()]
    tables += [(name, PARTITION_COLUMN, None) for name in (spec.raw_table, *own_tables)]
    _adopt_warehouse_tables(warehouse, tables)
    with run_database(run_id) as con:
        run = RawRun(con, spec, window, run_id, WorkingCopy(con))
        try:
            yield run
        except BaseException:
            run.copy.discard()  # files flushed before the failure: no commit will name them
            raise
        run.committed = run.copy.commit(run_id)
    # The transaction's start points the warehouse's views at the run's new snapshots (`views.refresh`);
    # a table a reader made meanwhile under one of their names (empty) makes way for its view.
    with warehouse.transaction() as con:
        views.adopt_tables(con, [entry for entry in tables if entry[0] in run.copy.tracked])
        if views.object_kind(con, spec.raw_table):
            run.partition_rows = raw_partition_counts(con, spec, window)
            run.total_rows = con.execute(f"SELECT count(*) FROM {sql.ident(spec.raw_table)}").fetchone()[0]


def _adopt_warehouse_tables(warehouse: Warehouse, tables: list[tuple[str, str | None, str | None]]) -> None:
    """Tables of these names the warehouse still holds (from before they moved to the lake) become
    lake tables before the run copies any row in (`views.adopt`)."""
    with warehouse.read() as con:
        held = {
            name
            for (name,) in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE NOT temporary AND schema_name = 'main'"
                f" AND table_name IN ({', '.join(sql.literal(name) for name, _, _ in tables)})"
            ).fetchall()
        }
    if held:
        with warehouse.transaction() as con:
            views.adopt_tables(con, [entry for entry in tables if entry[0] in held])
