"""The warehouse: the DuckDB resource, the SQL text helpers and the one partitioned table writer."""

from ml_platform.warehouse.resource import WAREHOUSE_POOL, Warehouse, connect

__all__ = ["WAREHOUSE_POOL", "Warehouse", "connect"]
