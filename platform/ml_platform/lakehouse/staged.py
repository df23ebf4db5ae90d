"""Writing a lake table from inside a warehouse transaction: the rows are staged in the connection,
read back as the table's new state by the rest of the transaction (its checks), and committed to
the lake table just before the warehouse commits.

`stage` takes the rows of a partition replace, already in a temporary table of the connection:
- the warehouse's view of the table (`<table>`, over the lake table's current metadata) is
  shadowed, for this connection only, by a temporary view of the same name: the table with the
  replaced days taken out and the staged rows in. Everything after it in the transaction (counts,
  contract checks, previews) reads the new state, as it did with a DuckDB table;
- at COMMIT (`Warehouse.transaction()`'s `before_commit`), each staged replace is written as one
  Parquet file per day under the table's location, committed to the lake table
  (`replace.replace_partitions`), the shadow dropped and the warehouse's view pointed at the new
  metadata, all before the warehouse transaction commits. A failure anywhere rolls the warehouse
  transaction back and leaves the lake table as it was (its files unreferenced until housekeeping).
"""

from __future__ import annotations

import datetime as dt
import uuid

import duckdb

from ml_platform.lakehouse import replace, tables
from ml_platform.lakehouse.scan import scan_sql
from ml_platform.warehouse import sql
from ml_platform.warehouse.resource import before_commit

# The connection's staged replaces, in the order they were staged (a temporary table).
PENDING = "_lake_pending"


def staged_table(name: str) -> str:
    return f"_lake_staged_{name}"


def ensure_view(con: duckdb.DuckDBPyConnection, name: str, empty_sql: str, partition_column: str) -> None:
    """The warehouse's view `name` over the lake table (made from `empty_sql`'s columns when it does
    not exist yet). A DuckDB table of that name with rows, from before its table moved to the lake,
    is refused: its rows would be lost."""
    kind = _object_kind(con, name)
    if kind == "VIEW":
        return
    if kind == "TABLE":
        if con.execute(f"SELECT count(*) FROM main.{sql.ident(name)}").fetchone()[0]:
            raise RuntimeError(
                f"{name} is a warehouse table with rows, written before ML_PLATFORM_LAKE_TABLES was set: rebuild"
                " its partitions in this mode on a new warehouse, or unset it"
            )
        con.execute(f"DROP TABLE main.{sql.ident(name)}")
    schema = con.execute(f"{tables.storable_select(con, f'({empty_sql})')} FROM ({empty_sql}) LIMIT 0")
    table = tables.ensure_table(name, schema.to_arrow_table().schema, partition_column)
    _point_view(con, name, table.metadata_location)


def stage(con: duckdb.DuckDBPyConnection, name: str, partition_column: str, days: list[dt.date]) -> None:
    """The rows in `staged_table(name)` replace `days` of lake table `name` when the warehouse
    transaction commits; until then this connection reads `name` as replaced."""
    first_in_transaction = not con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = ?", [PENDING]
    ).fetchone()[0]
    if (
        not first_in_transaction
        and con.execute(f"SELECT count(*) FROM {PENDING} WHERE table_name = ?", [name]).fetchone()[0]
    ):
        # Its staged rows would be replaced by the second write's, and the first one's days lost.
        raise RuntimeError(
            f"{name} is written twice in one transaction: a lake table takes one replace per transaction"
        )
    staged = sql.ident(staged_table(name))
    database = con.execute("SELECT current_database()").fetchone()[0]
    scope = sql.in_window(partition_column, (days[0], days[-1])) if days else "FALSE"
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {sql.ident(name)} AS"
        f" SELECT * FROM {sql.qualified(database, 'main', name)} WHERE NOT coalesce({scope}, FALSE)"
        f" UNION ALL BY NAME SELECT * FROM {staged}"
    )
    if first_in_transaction:
        con.execute(f"CREATE TEMP TABLE {PENDING} (seq INTEGER, table_name VARCHAR, column_name VARCHAR, days DATE[])")
        before_commit(con, publish)
    con.execute(
        f"INSERT INTO {PENDING} SELECT (SELECT count(*) FROM {PENDING}), ?, ?, ?",
        [name, partition_column, [d for d in days]],
    )


def publish(con: duckdb.DuckDBPyConnection) -> None:
    """Commit every staged replace to its lake table and point the warehouse's view at it."""
    pending = con.execute(f"SELECT table_name, column_name, days FROM {PENDING} ORDER BY seq").fetchall()
    run_id = uuid.uuid4().hex
    for name, column, days in pending:
        staged = sql.ident(staged_table(name))
        # The table is widened first when the contract gained columns since it was made.
        files = [path for path, _ in tables.write_day_files(con, name, staged, column, run_id).values()]
        committed = replace.replace_partitions(name, days, files, run_id)
        con.execute(f"DROP VIEW temp.main.{sql.ident(name)}")
        con.execute(f"DROP TABLE temp.main.{staged}")
        _point_view(con, name, committed.metadata_location)
    con.execute(f"DROP TABLE temp.main.{PENDING}")


def _point_view(con: duckdb.DuckDBPyConnection, name: str, metadata_location: str) -> None:
    database = con.execute("SELECT current_database()").fetchone()[0]
    con.execute(
        f"CREATE OR REPLACE VIEW {sql.qualified(database, 'main', name)} AS SELECT * FROM {scan_sql(metadata_location)}"
    )


def _object_kind(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    found = con.execute(
        """SELECT 'TABLE' FROM duckdb_tables() WHERE NOT temporary AND schema_name = 'main' AND table_name = $1
           UNION ALL
           SELECT 'VIEW' FROM duckdb_views() WHERE NOT temporary AND schema_name = 'main' AND view_name = $1""",
        [name],
    ).fetchall()
    return found[0][0] if found else None
