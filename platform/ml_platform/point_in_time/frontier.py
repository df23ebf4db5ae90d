"""Feature-view frontiers: the rows that can ever answer a point-in-time lookup, kept at write time.

A row of a feature table can be the answer at some time t only if it became available
(`greatest(ts, created)`) before every better row of its key (greater (ts, created)): otherwise a
better row is always usable whenever it is. Those rows are the key's *frontier*; along it,
availability and (ts, created) rise together, so a point-in-time lookup is one plain `ASOF JOIN`
on availability (see `point_in_time`). Finding the frontier means ordering every row of the table;
done in every lookup, that was most of its cost (benchmarks/). So the writer keeps it in a table
`<view>__frontier` (the view's columns plus `__available`) and updates it with each write, in the
same transaction (on the lake: in the same catalog commit as the view's days).

Updating is bounded by the write, not the table: when a window's rows are replaced, every changed
row (removed or added) has availability at or after some time S. A row available before S keeps
its membership (the rows that changed are all available after it, so they never decide it), so
only the rows available from S on are recomputed, against the better rows of their keys (those
with a timestamp at or after the oldest of them).
"""

from __future__ import annotations

import datetime as dt

import duckdb

from ml_platform.contracts import writer
from ml_platform.contracts.writer import table_exists
from ml_platform.warehouse import sql

AVAILABLE = "__available"


def frontier_table(table: str) -> str:
    return f"{table}__frontier"


def available_since(
    con: duckdb.DuckDBPyConnection, table: str, ts: str, created: str | None, where: str
) -> dt.datetime | None:
    """The earliest availability among `table`'s rows matching `where` (None without rows)."""
    return con.execute(f"SELECT min({_available(ts, created)}) FROM {sql.ident(table)} WHERE {where}").fetchone()[0]


def refresh_frontier(
    con: duckdb.DuckDBPyConnection,
    table: str,
    keys: tuple[str, ...],
    ts: str,
    created: str | None,
    since: dt.datetime | None,
) -> None:
    """Bring `<table>__frontier` up to date after rows available from `since` on changed (created
    from the whole table when it does not exist yet; nothing to do when `since` is None)."""
    target = sql.ident(frontier_table(table))
    if not table_exists(con, frontier_table(table)):
        writer.write_whole(con, frontier_table(table), frontier_rows(table, keys, ts, created), read_from=(table,))
        return
    if since is None:
        return
    if writer.on_lake():
        # A lake table is replaced whole: its rows available before `since`, and the recomputed ones.
        writer.write_whole(
            con,
            frontier_table(table),
            f"SELECT * FROM {target} WHERE {AVAILABLE} < {sql.literal(since)}"
            f" UNION ALL BY NAME ({frontier_rows(table, keys, ts, created, since=since)})",
            read_from=(table,),
        )
        return
    con.execute(f"DELETE FROM {target} WHERE {AVAILABLE} >= {sql.literal(since)}")
    con.execute(f"INSERT INTO {target} {frontier_rows(table, keys, ts, created, since=since)}")


def frontier_rows(
    table: str,
    keys: tuple[str, ...],
    ts: str,
    created: str | None,
    *,
    since: dt.datetime | None = None,
    columns: tuple[str, ...] | None = None,
) -> str:
    """SELECT of the frontier rows of `table` with `__available`: all its columns, or only the
    keys, timestamps and `columns` (for a lookup); only those available from `since` on when given
    (for an update, which keeps every column)."""
    key_list = sql.columns_list(keys)
    available = _available(ts, created)
    order = f"{sql.ident(ts)} DESC" + (f", {sql.ident(created)} DESC" if created else "")
    if columns is None:
        carried = "*"
    else:
        carried = sql.columns_list(list(dict.fromkeys((*keys, ts, *([created] if created else []), *columns))))
    rows = f"SELECT {carried} FROM {sql.ident(table)} WHERE {sql.ident(ts)} IS NOT NULL"
    if since is not None:
        # The better rows of the recomputed ones: same key, timestamp at or after their oldest.
        rows = f"""
            SELECT __all.* FROM {sql.ident(table)} __all
            JOIN (SELECT {key_list}, min({sql.ident(ts)}) AS __from FROM {sql.ident(table)}
                  WHERE {available} >= {sql.literal(since)} GROUP BY ALL) __changed USING ({key_list})
            WHERE __all.{sql.ident(ts)} >= __changed.__from"""
    recent = "" if since is None else f" AND {AVAILABLE} >= {sql.literal(since)}"
    return f"""
        SELECT * EXCLUDE (__available_of_better) FROM (
            SELECT *, {available} AS {AVAILABLE},
                   min({available}) OVER (PARTITION BY {key_list} ORDER BY {order}
                                          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS __available_of_better
            FROM ({rows})
        )
        WHERE (__available_of_better IS NULL OR {AVAILABLE} < __available_of_better){recent}"""


def _available(ts: str, created: str | None) -> str:
    return f"greatest({sql.ident(ts)}, {sql.ident(created)})" if created else sql.ident(ts)


def frontier_as_read(
    con: duckdb.DuckDBPyConnection, table: str, keys: tuple[str, ...], ts: str, created: str | None
) -> None:
    """`<table>__frontier` computed from `table` as this connection reads it (a temporary view),
    for a reader that reads `table` as of an older snapshot, which the kept frontier is not."""
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {sql.ident(frontier_table(table))} AS {frontier_rows(table, keys, ts, created)}"
    )
