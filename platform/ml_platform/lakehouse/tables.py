"""A lake table made from the rows it will hold: its Iceberg schema from their Arrow schema,
partitioned by one date column (identity: one partition per day; first by a scope column in a
table several writers share, or by the scope column alone), widened when rows bring columns it
lacks; and the rows written as its files, Parquet files per day under
`<location>/data/<column>=<day>/` (`write_partition_files`), ready for a commit.

DuckDB writes the Parquet files without Iceberg field ids, so every table carries a name mapping
(`schema.name-mapping.default`) by which readers find its columns; it is set at creation and again
with every widening, in the same commit. pyiceberg's own retry of a conflicting commit is turned off
(`commit.retry.num-retries` 0): `replace` redoes a commit itself, from the new head, and counts it.
"""

from __future__ import annotations

import datetime as dt
import os

import duckdb
import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException, NoSuchTableError, TableAlreadyExistsError
from pyiceberg.table import Table
from pyiceberg.types import DecimalType, FloatType, IcebergType, IntegerType

from ml_platform.lakehouse.catalog import catalog, identifier, table_location
from ml_platform.warehouse import sql

NAME_MAPPING = "schema.name-mapping.default"
# Snappy rather than zstd: on `make bench`'s pipeline, raw tables' JSON records are written faster and
# read back (by the clean step) in about half the time; their files are about 1.8 times larger.
COMPRESSION = "snappy"
PROPERTIES = {"commit.retry.num-retries": "0", "format-version": "2"}


def storable_select(con: duckdb.DuckDBPyConnection, relation: str) -> str:
    """`SELECT` of `relation`'s columns as a lake table stores them: JSON as text (Iceberg has no
    JSON type; DuckDB's JSON functions read text alike)."""
    columns = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    return "SELECT " + ", ".join(
        f"{sql.ident(name)}::VARCHAR AS {sql.ident(name)}" if kind == "JSON" else sql.ident(name)
        for name, kind, *_ in columns
    )


def load_table(name: str) -> Table | None:
    """The table as the catalog has it now; None before it was created."""
    try:
        return catalog().load_table(identifier(name))
    except NoSuchTableError:
        return None


def ensure_table(name: str, schema: pa.Schema, partition_column: str | None, scope_column: str | None = None) -> Table:
    """The table `name`, created from `schema` and partitioned by `partition_column` (and first by
    `scope_column`, for a table several writers share: each replaces the days of its own value of
    it, e.g. the profiles of its own table; by `scope_column` alone when `partition_column` is None,
    a small table each writer replaces its scope of whole) if it does not exist, given `schema`'s columns it lacks (added at the end, as nullable), and widened where
    `schema` holds a column in a type Iceberg widens it to (INTEGER to BIGINT, FLOAT to DOUBLE, a
    DECIMAL's precision)."""
    table = load_table(name)
    if table is None:
        table = _create(name, schema, partition_column, scope_column)
    changed = _changed_columns(table, schema)
    while changed:
        try:
            with table.transaction() as tx:
                with tx.update_schema() as update:
                    update.union_by_name(pa.schema([schema.field(column) for column in changed]))
                tx.set_properties(**{NAME_MAPPING: tx.table_metadata.schema().name_mapping.model_dump_json()})
        except CommitFailedException:
            pass  # another writer committed first (maybe the same change): look again
        table = catalog().load_table(identifier(name))
        changed = _changed_columns(table, schema)
    return table


def _changed_columns(table: Table, schema: pa.Schema) -> list[str]:
    """`schema`'s columns the table lacks or holds in a narrower type."""
    current = {field.name: field.field_type for field in table.schema().fields}
    return [field.name for field in schema if field.name not in current or _wider(current[field.name], field.type)]


def _wider(current: IcebergType, incoming: pa.DataType) -> bool:
    """Whether `incoming` is a type Iceberg's schema evolution widens `current` to."""
    if isinstance(current, IntegerType):
        return pa.types.is_int64(incoming)
    if isinstance(current, FloatType):
        return pa.types.is_float64(incoming)
    if isinstance(current, DecimalType):
        return (
            pa.types.is_decimal(incoming) and incoming.scale == current.scale and incoming.precision > current.precision
        )
    return False


def _create(name: str, schema: pa.Schema, partition_column: str | None, scope_column: str | None) -> Table:
    for column in filter(None, (scope_column, partition_column)):
        if column not in schema.names:
            raise ValueError(f"{name}: the partition column {column!r} is not among its columns {schema.names}")
    try:
        with catalog().create_table_transaction(
            identifier(name), schema=schema, location=table_location(name), properties=PROPERTIES
        ) as tx:
            with tx.update_spec() as spec:
                for column in filter(None, (scope_column, partition_column)):
                    spec.add_identity(column)
            tx.set_properties(**{NAME_MAPPING: tx.table_metadata.schema().name_mapping.model_dump_json()})
    except (TableAlreadyExistsError, CommitFailedException):
        # Created by another writer meanwhile (the SQL catalog says so with either, depending on
        # when the two creations met); loading it below fails if it was something else.
        pass
    return catalog().load_table(identifier(name))


def partition_column(table: Table) -> str | None:
    """The date column the table is partitioned by (its last partition field); None for a table
    without partitions."""
    fields = table.spec().fields
    return table.schema().find_column_name(fields[-1].source_id) if fields else None


def write_partition_files(
    con: duckdb.DuckDBPyConnection,
    name: str,
    relation: str,
    partition_column: str | None,
    file_name: str,
    scope_column: str | None = None,
) -> tuple[int, dict[dt.date | None, list[str]]]:
    """`relation`'s rows as lake table `name`'s new files, in one pass: a Parquet file per day under
    `<location>/data/<column>=<day>/`, named from `file_name` (new for every write), rows in no
    particular order; one file `<location>/data/<file_name>.parquet` for a table without partitions
    (no partition column, no scope column: a table replaced whole). The table is made or
    widened from the rows first; nothing is committed. Returns the rows and {day: files}, day None
    for rows without one (a write the caller refuses). `scope_column`: see `ensure_table`."""
    stored = f"{storable_select(con, relation)} FROM {relation}"
    schema = con.execute(f"{stored} LIMIT 0").to_arrow_table().schema
    location = ensure_table(name, schema, partition_column, scope_column).location()
    partitions = ", ".join(sql.ident(column) for column in filter(None, (scope_column, partition_column)))
    if not location.startswith("s3://"):
        os.makedirs(f"{location}/data", exist_ok=True)
    if not partitions:
        return _write_whole_file(con, name, stored, f"{location}/data/{file_name}.parquet")
    # Names are new (`file_name`), so writing into the table's existing folders overwrites nothing.
    ((rows, files),) = con.execute(
        f"COPY ({stored}) TO {sql.literal(f'{location}/data')} (FORMAT parquet, COMPRESSION {COMPRESSION},"
        f" PARTITION_BY ({partitions}), WRITE_PARTITION_COLUMNS true,"
        f" FILENAME_PATTERN {sql.literal(f'{file_name}_{{i}}')}, OVERWRITE_OR_IGNORE true, RETURN_FILES true)"
    ).fetchall()
    by_day: dict[dt.date | None, list[str]] = {}
    for file in files:
        folder = file.rsplit("/", 2)[-2].partition("=")[2]
        day = dt.date.fromisoformat(folder) if _is_date(folder) else None
        by_day.setdefault(day, []).append(file)
    return rows, by_day


def _write_whole_file(
    con: duckdb.DuckDBPyConnection, name: str, stored: str, file: str
) -> tuple[int, dict[dt.date | None, list[str]]]:
    """The rows of an unpartitioned table as one Parquet file (none without rows: a table with no
    file holds no rows)."""
    ((rows,),) = con.execute(
        f"COPY ({stored}) TO {sql.literal(file)} (FORMAT parquet, COMPRESSION {COMPRESSION})"
    ).fetchall()
    if rows:
        return rows, {None: [file]}
    remove_files(name, [file])
    return 0, {}


def _is_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def remove_files(name: str, files: list[str]) -> None:
    """Remove files a write made for lake table `name` and no commit names (the write was rolled back)."""
    io = catalog().load_table(identifier(name)).io
    for file in files:
        io.delete(file)
