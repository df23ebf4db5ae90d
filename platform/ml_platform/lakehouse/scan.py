"""Reading lake tables in DuckDB: the SQL relation of a table at its current snapshot or at a given
one.

The platform reads a snapshot's data files as Parquet (`scan_sql`): pyiceberg plans the snapshot
(which files hold it), and DuckDB's own Parquet reader reads them, in the columns and order of the
table's schema. The platform's writes never leave delete files (a partition replace swaps whole
files), so the data files are the whole table. This needs no extension: DuckDB's iceberg extension
costs about 0.1 s per connection to load, and re-reads the table's metadata and manifests on every
query, where a warehouse connection reads its lake tables dozens of times in a run.

A table another engine has written delete files to, or files without column statistics, is read by
`iceberg_scan` of its metadata file (`iceberg_scan_sql`, DuckDB's iceberg extension, autoloaded
from its pinned wheel), which applies them. The tests read the tables that way too: a second reader
that shares no code with the first.
"""

from __future__ import annotations

import re

import duckdb
from pyiceberg.schema import Schema
from pyiceberg.table import FileScanTask, Table
from pyiceberg.types import IcebergType, ListType, MapType, NestedField, StructType

from ml_platform.lakehouse.tables import load_table
from ml_platform.warehouse import sql
from ml_platform.warehouse.extensions import load_iceberg

__all__ = [
    "iceberg_scan_sql",
    "load_iceberg",
    "pin_current",
    "read_at",
    "read_empty",
    "scan_sql",
]

# DuckDB's type for an Iceberg primitive type: every file's column is read as it (and a column no
# data file has yet, of a table widened since its last write, as NULLs of it).
_DUCKDB_TYPES = {
    "boolean": "BOOLEAN",
    "int": "INTEGER",
    "long": "BIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "date": "DATE",
    "time": "TIME",
    "timestamp": "TIMESTAMP",
    "timestamptz": "TIMESTAMPTZ",
    "string": "VARCHAR",
    "uuid": "UUID",
    "binary": "BLOB",
}


def scan_sql(table: Table, snapshot_id: int | None = None) -> str:
    """A relation (`SELECT * FROM <it>`) of lake table `table` at its current snapshot (in its
    current columns) or at `snapshot_id`, one the table still keeps (in the columns it had then)."""
    snapshot = table.current_snapshot() if snapshot_id is None else table.snapshot_by_id(snapshot_id)
    schema = table.schema()
    if snapshot_id is not None and snapshot.schema_id is not None:
        schema = table.schemas().get(snapshot.schema_id, schema)  # the columns the table had then
    tasks = list(table.scan(snapshot_id=snapshot.snapshot_id).plan_files()) if snapshot else []
    return _files_sql(table, schema, tasks) or iceberg_scan_sql(table.metadata_location, snapshot_id)


def tasks_sql(table: Table, tasks: list[FileScanTask]) -> str | None:
    """A relation of some of the table's current files (tasks of `table.scan().plan_files()`), in
    its current columns; None when DuckDB's Parquet reader cannot read them as the table (delete
    files, or files without column statistics)."""
    return _files_sql(table, table.schema(), tasks) if tasks else None


def _files_sql(table: Table, schema: Schema, tasks: list[FileScanTask]) -> str | None:
    # The columns each file holds, by field id (Iceberg's statistics of the file, which pyiceberg
    # takes from the Parquet footer when a file is added).
    held = [frozenset(task.file.value_counts or ()) for task in tasks]
    if any(task.delete_files for task in tasks) or not all(held):
        return None
    present = frozenset().union(*held)
    columns = []
    for field in schema.fields:
        name, kind = sql.ident(field.name), _duckdb_type(field.field_type)
        if _field_ids(field) & present:
            # In the table's type: a file written before the column was widened (INTEGER to BIGINT)
            # holds the narrower one, and DuckDB reads every file as the first one's types.
            columns.append(f"CAST({name} AS {kind}) AS {name}" if kind else name)
        elif kind:
            columns.append(f"NULL::{kind} AS {name}")
        else:
            return None
    if not tasks:
        return f"(SELECT {', '.join(columns)} WHERE FALSE)"
    files = "[" + ", ".join(sql.literal(task.file.file_path) for task in tasks) + "]"
    # The day is in the file (`<column>=<day>/` folders are Iceberg's layout, not a Hive table's).
    # DuckDB reads every file in the first one's columns and types unless told to unite them by
    # name: needed once the table was widened (files before it lack columns, or hold narrower types).
    widened = len(set(held)) > 1 or len(table.metadata.schemas) > 1
    options = f"hive_partitioning = false, union_by_name = {'true' if widened else 'false'}"
    return f"(SELECT {', '.join(columns)} FROM read_parquet({files}, {options}))"


def iceberg_scan_sql(metadata_location: str, snapshot_id: int | None = None) -> str:
    """`iceberg_scan(...)` of the table whose metadata file is `metadata_location`, at its current
    snapshot or at `snapshot_id`: DuckDB's iceberg extension reading it (autoloaded, or
    `load_iceberg`)."""
    at = f", snapshot_from_id => {int(snapshot_id)}" if snapshot_id is not None else ""
    return f"iceberg_scan({sql.literal(metadata_location)}{at})"


def _field_ids(field: NestedField) -> set[int]:
    """A column's field id and its nested fields' (statistics name a map's or list's leaves only)."""
    ids = {field.field_id}
    kind = field.field_type
    if isinstance(kind, MapType):
        ids |= _field_ids(kind.key_field) | _field_ids(kind.value_field)
    elif isinstance(kind, ListType):
        ids |= _field_ids(kind.element_field)
    elif isinstance(kind, StructType):
        for child in kind.fields:
            ids |= _field_ids(child)
    return ids


def _duckdb_type(kind: IcebergType) -> str | None:
    text = str(kind)
    if (decimal := re.fullmatch(r"decimal\((\d+),\s*(\d+)\)", text)) is not None:
        return f"DECIMAL({decimal[1]}, {decimal[2]})"
    return _DUCKDB_TYPES.get(text)


def read_at(con: duckdb.DuckDBPyConnection, name: str, snapshot_id: int) -> None:
    """From now on `con` reads lake table `name` as it was at `snapshot_id`: a temporary view of
    that name, ahead of the warehouse's own (the connection's other readers are unaffected)."""
    table = load_table(name)
    if table is None or table.snapshot_by_id(snapshot_id) is None:
        raise ValueError(f"{name} has no snapshot {snapshot_id} (expired by housekeeping, or never the table's)")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {sql.ident(name)} AS SELECT * FROM {scan_sql(table, snapshot_id)}")


def pin_current(con: duckdb.DuckDBPyConnection, name: str) -> int | None:
    """`read_at` the table's current snapshot, so the rest of `con`'s work reads one version of it
    whatever commits meanwhile; the snapshot (None: the table has none yet, nothing pinned)."""
    table = load_table(name)
    snapshot = table.current_snapshot() if table else None
    if snapshot is None:
        return None
    read_at(con, name, snapshot.snapshot_id)
    return snapshot.snapshot_id


def read_empty(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """From now on `con` reads lake table `name` as empty (as it was before its first commit)."""
    table = load_table(name)
    if table is None:
        raise ValueError(f"{name} is not a lake table")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {sql.ident(name)} AS SELECT * FROM {scan_sql(table)} WHERE FALSE")
