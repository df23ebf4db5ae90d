"""Curated tables exported to the S3 prefix as Hive-partitioned Parquet, for readers outside the
platform (Spark, Athena, Trino, DuckDB, pandas):
`s3://bucket/prefix/curated/<table>/<partition column>=<YYYY-MM-DD>/data.parquet`.

A run exports the partitions it wrote, each to one file under a fixed name, so re-running a
partition replaces its file: the export is as idempotent as the warehouse write. The partition
column lives in the path, not in the file (Hive's convention; readers with Hive partitioning add
it back, typed DATE). Only partitions whose blocking checks passed (contract, privacy) are
exported. A partition that fails has its old file removed, so the lake never holds a version the
warehouse no longer has, nor rows that failed their contract.
"""

from __future__ import annotations

import duckdb

from ml_platform.storage.aws import AwsAccess, s3_client
from ml_platform.storage.location import CURATED, S3Location
from ml_platform.warehouse import sql
from ml_platform.warehouse.s3 import attach_s3

FILE_NAME = "data.parquet"


def partition_path(table: str, partition_column: str, day: str) -> tuple[str, str, str]:
    """(table folder, partition folder, file) of one partition under the prefix."""
    return CURATED, f"{table}/{partition_column}={day}", FILE_NAME


def export_partitions(
    con: duckdb.DuckDBPyConnection,
    location: S3Location,
    access: AwsAccess,
    table: str,
    partition_column: str,
    passed: list[str],
    failed: list[str],
) -> dict:
    """Write the `passed` partitions' rows from the warehouse table to the prefix and remove the
    `failed` partitions' files. Returns what the run's metadata says of it."""
    attach_s3(con, access)
    for day in passed:
        select = (
            f"SELECT * EXCLUDE ({sql.ident(partition_column)}) FROM {sql.ident(table)}"
            f" WHERE {sql.ident(partition_column)} = {sql.literal(day)}::DATE"
        )
        con.execute(sql.copy_to_parquet(select, location.url(*partition_path(table, partition_column, day))))
    client = s3_client(access)
    for day in failed:
        client.delete_object(Bucket=location.bucket, Key=location.key(*partition_path(table, partition_column, day)))
    return {
        "location": location.url(CURATED, table) + "/",
        "exported_partitions": len(passed),
        "withheld_partitions": sorted(failed),
    }
