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

from ml_platform.contracts import writer
from ml_platform.lakehouse import staged, views
from ml_platform.warehouse import sql
from ml_platform.warehouse.sql import DateWindow

PROFILES_TABLE = "partition_profiles"
SCOPE_COLUMN, PARTITION_COLUMN = "table_name", "partition_date"
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
    """Replace the window's profiles of `table` with what it holds now (call inside the write's
    transaction). With lake tables, `partition_profiles` is one too, shared by every table: a
    write replaces its own table's days only, committed with the table it profiles."""
    nulls = ", ".join(f"count(*) - count({sql.ident(c)})" for c in columns)
    rows = f"""SELECT {sql.literal(table)} AS table_name, {sql.ident(day_column)} AS partition_date,
                      count(*) AS row_count, MAP({sql.string_list(columns)}, [{nulls}]::BIGINT[]) AS null_counts,
                      now()::TIMESTAMP AS profiled_at
               FROM {sql.ident(table)} WHERE {sql.in_window(day_column, window)}
               GROUP BY {sql.ident(day_column)}"""
    if writer.on_lake():
        empty = views.empty_table(PROFILES_TABLE)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {sql.ident(empty)} ({PROFILE_COLUMNS})")
        views.ensure_view(con, PROFILES_TABLE, f"SELECT * FROM {sql.ident(empty)}", PARTITION_COLUMN, SCOPE_COLUMN)
        # The days the window holds now or gets rows on (not every day of it: a window can be long).
        held = con.execute(
            f"""SELECT DISTINCT {PARTITION_COLUMN} FROM {sql.ident(PROFILES_TABLE)}
                WHERE {SCOPE_COLUMN} = {sql.literal(table)} AND {sql.in_window(PARTITION_COLUMN, window)}
                UNION SELECT DISTINCT {PARTITION_COLUMN} FROM ({rows}) WHERE {PARTITION_COLUMN} IS NOT NULL"""
        ).fetchall()
        days = sorted(day for (day,) in held)
        staged.stage(con, PROFILES_TABLE, PARTITION_COLUMN, rows, days, scope=(SCOPE_COLUMN, table))
        return
    con.execute(f"CREATE TABLE IF NOT EXISTS {sql.ident(PROFILES_TABLE)} ({PROFILE_COLUMNS})")
    scope = f"{SCOPE_COLUMN} = {sql.literal(table)} AND {sql.in_window(PARTITION_COLUMN, window)}"
    con.execute(f"DELETE FROM {sql.ident(PROFILES_TABLE)} WHERE {scope}")
    con.execute(f"INSERT INTO {sql.ident(PROFILES_TABLE)} BY NAME {rows}")


def read_profiles(con: duckdb.DuckDBPyConnection, table: str, window: DateWindow) -> dict[dt.date, Profile]:
    """The stored profiles of `table` for the days of `window` that hold rows."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_schema = 'main'",
        [PROFILES_TABLE],
    ).fetchone()[0]
    if not exists:
        return {}
    rows = con.execute(
        f"""SELECT partition_date, row_count, null_counts FROM {sql.ident(PROFILES_TABLE)}
            WHERE table_name = {sql.literal(table)} AND {sql.in_window("partition_date", window)}"""
    ).fetchall()
    return {day: Profile(rows, dict(nulls)) for day, rows, nulls in rows}
