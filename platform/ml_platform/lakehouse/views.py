"""The warehouse's views of lake tables: each lake table is read in the warehouse file as a view of
the same name over its current snapshot's data files (`scan.scan_sql`), pointed at a newer
snapshot after every commit of this process (`point_view`), and at every write transaction's
start at whatever the catalog holds now (`refresh`): another process's or another engine's commits,
and tables this warehouse never saw (a new, empty warehouse file gets a view of every lake table).
Each view's comment is the metadata file it was made from, so a refresh re-plans only the tables
that moved.

A DuckDB table of that name, left from before its table moved to the lake (a warehouse written with
`ML_PLATFORM_LAKE_TABLES=false`, or by an older release), is adopted first: its rows become the
lake table's, then it makes way for the view.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import duckdb
from pyiceberg.table import StaticTable, Table

from ml_platform import settings
from ml_platform.lakehouse import iceberg_private, replace, tables
from ml_platform.lakehouse.catalog import NAMESPACE, catalog, file_io_properties
from ml_platform.lakehouse.scan import scan_sql
from ml_platform.warehouse import sql
from ml_platform.warehouse.resource import on_begin


def empty_table(name: str) -> str:
    """The temporary table whose columns a lake table `name` is made from (`ensure_view`)."""
    return f"_lake_empty_{name}"


def ensure_view(
    con: duckdb.DuckDBPyConnection, name: str, empty_sql: str, partition_column: str, scope_column: str | None = None
) -> None:
    """The warehouse's view `name` over the lake table (made from `empty_sql`'s columns when it does
    not exist yet), a warehouse table of that name adopted first (`adopt`)."""
    kind = object_kind(con, name)
    if kind == "VIEW":
        return
    if kind == "TABLE":
        adopt(con, name, partition_column, scope_column)
    schema = con.execute(f"{tables.storable_select(con, f'({empty_sql})')} FROM ({empty_sql}) LIMIT 0")
    table = tables.ensure_table(name, schema.to_arrow_table().schema, partition_column, scope_column)
    point_view(con, name, table)


def adopt_tables(con: duckdb.DuckDBPyConnection, tables_: Iterable[tuple[str, str | None, str | None]]) -> None:
    """The warehouse tables among `tables_` (name, partition column, scope column) adopted by their
    lake tables (`adopt`) and replaced by views of them. An empty one whose lake table does not
    exist yet (a reader made it) stays until the lake table does."""
    for name, partition_column, scope_column in tables_:
        if object_kind(con, name) != "TABLE":
            continue
        table = tables.load_table(name)
        if table is None and not con.execute(f"SELECT count(*) FROM main.{sql.ident(name)}").fetchone()[0]:
            continue
        adopt(con, name, partition_column, scope_column)
        point_view(con, name, tables.load_table(name))


def adopt(con: duckdb.DuckDBPyConnection, name: str, partition_column: str | None, scope_column: str | None) -> None:
    """The rows of warehouse table `name` committed to lake table `name` (every day, of every scope
    value, it holds: in one commit of its own), then the warehouse table dropped. A warehouse
    transaction that then rolls back keeps the table, and the next write adopts it again: the same
    rows replace the same days."""
    source = f"main.{sql.ident(name)}"
    if con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]:
        run_id = f"adopted-{uuid.uuid4().hex}"
        scopes = (
            [value for (value,) in con.execute(f"SELECT DISTINCT {sql.ident(scope_column)} FROM {source}").fetchall()]
            if scope_column
            else [None]
        )
        replacements: list[replace.Replacement] = []
        try:
            for value in scopes:
                within = f"{sql.ident(scope_column)} = {sql.literal(value)}" if scope_column else "TRUE"
                _, written = tables.write_partition_files(
                    con, name, f"(SELECT * FROM {source} WHERE {within})", partition_column, run_id, scope_column
                )
                files = [file for day_files in written.values() for file in day_files]
                replacements.append(
                    replace.Replacement(
                        name,
                        sorted(written) if partition_column else None,
                        files,
                        (scope_column, value) if scope_column else None,
                    )
                )
                if partition_column and None in written:
                    # The platform's writers never leave such rows; a table changed by hand may: they have
                    # no day to go to.
                    raise RuntimeError(
                        f"{name}: warehouse table rows without a {partition_column} cannot move to the lake"
                        " table; delete or fix them, or set ML_PLATFORM_LAKE_TABLES=false"
                    )
        except BaseException:
            for replacement in replacements:
                tables.remove_files(name, list(replacement.files))
            raise
        replace.replace_together(replacements, run_id)
    con.execute(f"DROP TABLE {source}")


def point_view(con: duckdb.DuckDBPyConnection, name: str, table: Table) -> None:
    """The warehouse's view `name` over `table`'s current snapshot, its comment the metadata file."""
    database = con.execute("SELECT current_database()").fetchone()[0]
    view = sql.qualified(database, "main", name)
    con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {scan_sql(table)}")
    con.execute(f"COMMENT ON VIEW {view} IS {sql.literal(table.metadata_location)}")


def read_snapshot(con: duckdb.DuckDBPyConnection, name: str) -> int | None:
    """The snapshot of lake table `name` the warehouse's view reads in `con`: the current one of the
    metadata file the view's comment names; None without a view or a snapshot."""
    found = con.execute(
        "SELECT comment FROM duckdb_views() WHERE NOT temporary AND schema_name = 'main' AND view_name = $1", [name]
    ).fetchall()
    if not found or not found[0][0]:
        return None
    snapshot = StaticTable.from_metadata(found[0][0], file_io_properties()).current_snapshot()
    return snapshot.snapshot_id if snapshot else None


def refresh(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every lake table's view at the catalog's current metadata, where it is not already (a view
    made from an older one, or none); returns the tables pointed. A warehouse table of a lake
    table's name (from before the lake) is left to its next write, which adopts it."""
    current = iceberg_private.current_locations(catalog(), NAMESPACE)
    shown = dict(
        con.execute(
            "SELECT view_name, comment FROM duckdb_views() WHERE NOT temporary AND schema_name = 'main'"
        ).fetchall()
    )
    moved = [name for name, location in sorted(current.items()) if shown.get(name) != location]
    pointed = []
    for name in moved:
        if name not in shown and object_kind(con, name) == "TABLE":
            continue
        point_view(con, name, tables.load_table(name))
        pointed.append(name)
    return pointed


def object_kind(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    """'TABLE' or 'VIEW' for what the warehouse holds under `name` (schema main), None for nothing."""
    found = con.execute(
        """SELECT 'TABLE' FROM duckdb_tables() WHERE NOT temporary AND schema_name = 'main' AND table_name = $1
           UNION ALL
           SELECT 'VIEW' FROM duckdb_views() WHERE NOT temporary AND schema_name = 'main' AND view_name = $1""",
        [name],
    ).fetchall()
    return found[0][0] if found else None


def _refresh_on_the_lake(con: duckdb.DuckDBPyConnection) -> None:
    if settings.lake_tables():
        refresh(con)


# Every write transaction of a process that writes lake tables (each such module imports this one).
on_begin(_refresh_on_the_lake)
