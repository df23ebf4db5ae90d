"""The warehouse: DuckDB. The resource (`resource`), the SQL text helpers (`sql`, the only place SQL
text is built from names and values), extensions loaded from their pinned wheels (`extensions`)
and S3 access through httpfs (`s3`)."""

from ml_platform.warehouse.resource import WAREHOUSE_POOL, Warehouse, connect

__all__ = ["WAREHOUSE_POOL", "Warehouse", "connect"]
