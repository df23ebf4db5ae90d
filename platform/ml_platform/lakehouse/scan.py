"""Reading lake tables in DuckDB: the SQL that scans a table at its current snapshot or at a given
one, on a connection given `iceberg_scan` by `load_iceberg` (the extension from its pinned wheel).

DuckDB's iceberg extension attaches REST catalogs only, not a SQL catalog: the reader takes the
table's current metadata file from the catalog (`scan_sql` loads it) and scans that file.
"""

from __future__ import annotations

import duckdb

from ml_platform.lakehouse.tables import load_table
from ml_platform.warehouse import sql
from ml_platform.warehouse.extensions import load_iceberg

__all__ = ["current_scan_sql", "load_iceberg", "pin_current", "read_at", "read_empty", "scan_sql"]


def scan_sql(metadata_location: str, snapshot_id: int | None = None) -> str:
    """`iceberg_scan(...)` of the table whose metadata file is `metadata_location`, at its current
    snapshot or at `snapshot_id` (one the table still keeps)."""
    at = f", snapshot_from_id => {int(snapshot_id)}" if snapshot_id is not None else ""
    return f"iceberg_scan({sql.literal(metadata_location)}{at})"


def current_scan_sql(name: str) -> str | None:
    """`scan_sql` of table `name` as the catalog has it now; None before the table exists."""
    table = load_table(name)
    return scan_sql(table.metadata_location) if table else None


def read_at(con: duckdb.DuckDBPyConnection, name: str, snapshot_id: int) -> None:
    """From now on `con` reads lake table `name` as it was at `snapshot_id`: a temporary view of
    that name, ahead of the warehouse's own (the connection's other readers are unaffected)."""
    table = load_table(name)
    if table is None or table.snapshot_by_id(snapshot_id) is None:
        raise ValueError(f"{name} has no snapshot {snapshot_id} (expired by housekeeping, or never the table's)")
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {sql.ident(name)} AS SELECT * FROM {scan_sql(table.metadata_location, snapshot_id)}"
    )


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
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {sql.ident(name)} AS SELECT * FROM {scan_sql(table.metadata_location)} WHERE FALSE"
    )
