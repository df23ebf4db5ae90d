"""Each written partition's profile (rows, nulls per column), kept so history costs nothing.

The quality checks compare a partition with the table's previous days. Reading those days from
the table itself would scan weeks of data on every run; instead every write records the profile
of the partitions it wrote, in the same transaction, into `partition_profiles` (one small row per
table and day), and the checks read the history from there. A warehouse created before profiles
existed builds its history up as partitions are written.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from ml_platform.warehouse import sql
from ml_platform.warehouse.sql import DateWindow

PROFILES_TABLE = "partition_profiles"
PROFILE_COLUMNS = """
  table_name VARCHAR NOT NULL,
  partition_date DATE NOT NULL,
  row_count BIGINT NOT NULL,
  null_counts MAP(VARCHAR, BIGINT) NOT NULL,
  profiled_at TIMESTAMP NOT NULL
"""


@dataclass(frozen=True)
class Profile:
    rows: int
    nulls: dict[str, int]

    def null_rate(self, column: str) -> float:
        return self.nulls.get(column, 0) / self.rows if self.rows else 0.0


def record_profiles(
    con: duckdb.DuckDBPyConnection, table: str, day_column: str, columns: list[str], window: DateWindow
) -> None:
    """Replace the window's profiles of `table` with what it holds now (call inside the write's transaction)."""
    con.execute(f"CREATE TABLE IF NOT EXISTS {sql.ident(PROFILES_TABLE)} ({PROFILE_COLUMNS})")
    scope = f"table_name = {sql.literal(table)} AND {sql.in_window('partition_date', window)}"
    con.execute(f"DELETE FROM {sql.ident(PROFILES_TABLE)} WHERE {scope}")
    nulls = ", ".join(f"count(*) - count({sql.ident(c)})" for c in columns)
    con.execute(
        f"""INSERT INTO {sql.ident(PROFILES_TABLE)}
            SELECT {sql.literal(table)}, {sql.ident(day_column)}, count(*),
                   MAP({sql.string_list(columns)}, [{nulls}]::BIGINT[]), now()::TIMESTAMP
            FROM {sql.ident(table)} WHERE {sql.in_window(day_column, window)}
            GROUP BY {sql.ident(day_column)}"""
    )


def read_profiles(con: duckdb.DuckDBPyConnection, table: str, window: DateWindow) -> dict[dt.date, Profile]:
    """The stored profiles of `table` for the days of `window` that hold rows."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND schema_name = 'main'", [PROFILES_TABLE]
    ).fetchone()[0]
    if not exists:
        return {}
    rows = con.execute(
        f"""SELECT partition_date, row_count, null_counts FROM {sql.ident(PROFILES_TABLE)}
            WHERE table_name = {sql.literal(table)} AND {sql.in_window("partition_date", window)}"""
    ).fetchall()
    return {day: Profile(rows, dict(nulls)) for day, rows, nulls in rows}
