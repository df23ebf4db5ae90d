"""The one partitioned table writer: every clean and curated table is written through it.

A `ContractTable` is a warehouse table whose Pandera contract gives its columns, types and
rules, partitioned by a DATE column (or written whole when it has none). Writing a window is:
create the table from the contract if needed, delete the window and insert the new rows inside
the caller's transaction (so a crash leaves the old window, and a re-run leaves identical
rows), then count what each partition holds; rows the query put outside the window refuse the
write. `summary` gives the table's total and a preview for the run's metadata;
`ml_platform.results` turns them, with the contract verdicts, into what Dagster records.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import dagster as dg
import duckdb
import pandera.ibis as pa

from ml_platform import settings
from ml_platform.contracts import table_contract as tc
from ml_platform.lakehouse import staged, views
from ml_platform.partitions import window_keys
from ml_platform.warehouse import sql
from ml_platform.warehouse.sql import DateWindow, window_days

PREVIEW_ROWS = 5
# Set inside `scratch_tables()`: every table is a plain table of the connection, lake or not.
_SCRATCH = ContextVar("ml_platform_scratch_tables", default=False)


@contextmanager
def scratch_tables() -> Iterator[None]:
    """Within it, contract tables are written as plain tables of the connection given, never to the
    lake: for work in a scratch database (the audit's recomputation), whose tables are copies."""
    token = _SCRATCH.set(True)
    try:
        yield
    finally:
        _SCRATCH.reset(token)


def on_lake() -> bool:
    """Whether tables are lake tables (`ML_PLATFORM_LAKE_TABLES`, outside `scratch_tables()`): the
    warehouse holds a view of each, and a write is staged, then committed to the lake table just
    before the warehouse transaction commits (`ml_platform.lakehouse.staged`; a table changed row by
    row goes through a working copy instead, `lakehouse.working_copy`)."""
    return settings.lake_tables() and not _SCRATCH.get()


def write_whole(con: duckdb.DuckDBPyConnection, name: str, select_sql: str, read_from: tuple[str, ...] = ()) -> int:
    """`select_sql`'s rows become the whole of table `name` (a table without partitions, made from
    the rows: a frontier, a manifest, a training set), in the caller's transaction: a lake table
    replaced whole (`staged.stage_whole`; refused if `name`, or a table `read_from` the rows were
    computed from, changed since the transaction read it), or a warehouse table. Returns the rows
    written."""
    if on_lake():
        return staged.stage_whole(con, name, select_sql, read_from)
    return con.execute(f"CREATE OR REPLACE TABLE {sql.ident(name)} AS {select_sql}").fetchone()[0] or 0


@dataclass(frozen=True)
class ContractTable:
    """A warehouse table defined by its contract; `partition_column` is a DATE column or None."""

    name: str
    contract: type[pa.DataFrameModel]
    partition_column: str | None

    @property
    def on_lake(self) -> bool:
        """Whether the table is a lake table (`on_lake`)."""
        return on_lake()

    def create(self, con: duckdb.DuckDBPyConnection) -> None:
        if not self.on_lake:
            con.execute(tc.create_table_sql(self.contract, self.name))
            return
        empty = views.empty_table(self.name)
        con.execute(tc.create_table_sql(self.contract, empty, temporary=True))
        views.ensure_view(con, self.name, f"SELECT * FROM {sql.ident(empty)}", self.partition_column)

    def scope(self, window: DateWindow | None) -> str:
        """Predicate selecting the window's rows (every row of an unpartitioned table)."""
        return sql.in_window(self.partition_column, window) if self.partition_column else "TRUE"

    def relation(self, window: DateWindow | None) -> str:
        """SELECT of the window's rows, for checks and previews."""
        return f"SELECT * FROM {sql.ident(self.name)} WHERE {self.scope(window)}"

    def replace(
        self, con: duckdb.DuckDBPyConnection, window: DateWindow | None, select_sql: str
    ) -> dict[str | None, int]:
        """Replace the window's rows with `select_sql`'s (columns picked by name), in the caller's
        transaction, and return the rows per partition. Rows the SELECT puts outside the window
        (or without a partition value) would escape later replacements: the write is refused."""
        self.create(con)
        if self.on_lake:
            inserted = self._stage(con, window, select_sql)
        else:
            con.execute(f"DELETE FROM {sql.ident(self.name)} WHERE {self.scope(window)}")
            inserted = self.insert(con, select_sql)
        counts = self.partition_counts(con, window)
        if sum(counts.values()) != inserted:
            raise ValueError(
                f"{self.name}: {inserted - sum(counts.values())} of {inserted} written rows fall outside "
                f"{self.partition_column} {window[0]}..{window[1]}; the query must select only the window"
            )
        return counts

    def _stage(self, con: duckdb.DuckDBPyConnection, window: DateWindow | None, select_sql: str) -> int:
        """The lake path of `replace`: the rows written as the table's new files, in the contract's
        types, the window's days (every day the table or the rows hold, without a window) replaced
        at COMMIT."""
        typed = tc.typed_select_sql(self.contract, select_sql)
        days = list(window_days(window)) if window is not None else None
        return staged.stage(con, self.name, self.partition_column, typed, days)

    def insert(self, con: duckdb.DuckDBPyConnection, select_sql: str) -> int:
        """Append `select_sql`'s rows (columns picked by name); returns how many."""
        cols = sql.columns_list(tc.column_names(self.contract))
        return con.execute(f"INSERT INTO {sql.ident(self.name)} ({cols}) SELECT {cols} FROM ({select_sql})").fetchone()[
            0
        ]

    def partition_counts(self, con: duckdb.DuckDBPyConnection, window: DateWindow | None) -> dict[str | None, int]:
        """Rows per partition key of the window, zero for empty days; {None: rows} without partitions."""
        if not self.partition_column or window is None:
            return {None: self.total(con)}
        return rows_per_day(con, self.name, self.partition_column, window)

    def total(self, con: duckdb.DuckDBPyConnection) -> int:
        return con.execute(f"SELECT count(*) FROM {sql.ident(self.name)}").fetchone()[0]

    def summary(self, con: duckdb.DuckDBPyConnection, window: DateWindow | None) -> tuple[int, dg.MetadataValue]:
        """The table's total rows and a preview of the window, for the run's metadata."""
        return self.total(con), self.preview(con, window)

    def preview(self, con: duckdb.DuckDBPyConnection, window: DateWindow | None) -> dg.MetadataValue:
        """A few of the window's rows as a Markdown table, for the materialization page; personal
        columns masked (`contracts.personal`)."""
        shown = tc.shown_columns(self.contract)
        cur = con.execute(f"SELECT {shown} FROM ({self.relation(window)}) ORDER BY ALL LIMIT {PREVIEW_ROWS}")
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
        lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
        lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
        return dg.MetadataValue.md("\n".join(lines))


def _cell(value) -> str:
    text = "" if value is None else str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."


def rows_per_day(con: duckdb.DuckDBPyConnection, table: str, date_column: str, window: DateWindow) -> dict[str, int]:
    """Rows of `table` per day of the window, by partition key; zero for days without rows."""
    counted = dict(
        con.execute(
            f"SELECT strftime({sql.ident(date_column)}, '%Y-%m-%d'), count(*) FROM {sql.ident(table)}"
            f" WHERE {sql.in_window(date_column, window)} GROUP BY 1"
        ).fetchall()
    )
    return {day: counted.get(day, 0) for day in window_keys(window)}


def partition_fingerprints(
    con: duckdb.DuckDBPyConnection, table: str, date_column: str, window: DateWindow | None = None
) -> dict[str, tuple[int, str]]:
    """Rows and a content fingerprint per partition of `table` (within `window`, if given).

    The fingerprint sums a hash of every whole row, so it does not depend on row order and
    changes with any value, any added, removed or duplicated row. Days without rows are absent.
    """
    scope = sql.in_window(date_column, window, table_alias="t")
    return {
        day: (rows, f"{fingerprint:032x}")
        for day, rows, fingerprint in con.execute(
            f"SELECT strftime(t.{sql.ident(date_column)}, '%Y-%m-%d'), count(*),"
            # A HUGEINT sum of 64-bit hashes: exact, no overflow below 2^64 rows.
            f" sum(hash(t))"
            f" FROM {sql.ident(table)} t WHERE {scope} GROUP BY 1 ORDER BY 1"
        ).fetchall()
    }


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """A table, or the view of a lake table, of that name."""
    return (
        con.execute(
            "SELECT (SELECT count(*) FROM duckdb_tables() WHERE table_name = $1)"
            " + (SELECT count(*) FROM duckdb_views() WHERE NOT internal AND view_name = $1)",
            [table],
        ).fetchone()[0]
        > 0
    )
