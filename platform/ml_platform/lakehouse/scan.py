"""Reading lake tables in DuckDB: the SQL that scans a table at its current snapshot or at a given
one, on a connection given `iceberg_scan` by `load_iceberg` (the extension from its pinned wheel).

DuckDB's iceberg extension attaches REST catalogs only, not a SQL catalog: the reader takes the
table's current metadata file from the catalog (`scan_sql` loads it) and scans that file.
"""

from __future__ import annotations

from ml_platform.lakehouse.tables import load_table
from ml_platform.warehouse import sql
from ml_platform.warehouse.extensions import load_iceberg

__all__ = ["current_scan_sql", "load_iceberg", "scan_sql"]


def scan_sql(metadata_location: str, snapshot_id: int | None = None) -> str:
    """`iceberg_scan(...)` of the table whose metadata file is `metadata_location`, at its current
    snapshot or at `snapshot_id` (one the table still keeps)."""
    at = f", snapshot_from_id => {int(snapshot_id)}" if snapshot_id is not None else ""
    return f"iceberg_scan({sql.literal(metadata_location)}{at})"


def current_scan_sql(name: str) -> str | None:
    """`scan_sql` of table `name` as the catalog has it now; None before the table exists."""
    table = load_table(name)
    return scan_sql(table.metadata_location) if table else None
