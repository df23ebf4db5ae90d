"""Step 1 of an API source run: fetch the window's responses and store them as received.

One GET per day and location (rate limited, retried; see client.py); every response goes
into `raw_<name>_responses` (delete the window, insert), so the transform can be re-run from
them without calling the API.
"""

import duckdb

from ml_platform.ingestion.api.client import ApiClient, ApiResponse
from ml_platform.ingestion.api.spec import ApiSourceSpec
from ml_platform.warehouse import sql
from ml_platform.warehouse.sql import DateWindow, window_days

RESPONSES_COLUMNS = """
  landing_date DATE NOT NULL,
  location VARCHAR NOT NULL,
  source_file VARCHAR NOT NULL,
  url VARCHAR NOT NULL,
  status INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  fetched_at TIMESTAMP NOT NULL,
  body VARCHAR NOT NULL
"""
# Position of `attempts` in a responses row: the number of requests a response took.
ATTEMPTS = 5


def create_responses_table(con: duckdb.DuckDBPyConnection, spec: ApiSourceSpec) -> None:
    con.execute(f"CREATE TABLE IF NOT EXISTS {sql.ident(spec.responses_table)} ({RESPONSES_COLUMNS})")


def fetch_window(client: ApiClient, spec: ApiSourceSpec, window: DateWindow) -> list[tuple]:
    """One response per (day, location) as rows of the responses table; raises ApiError."""
    rows = []
    for day in window_days(window):
        for location in spec.locations:
            response: ApiResponse = client.get(spec.path, {"location": location, "date": day.isoformat()})
            rows.append(
                (
                    day,
                    location,
                    spec.batch_name(location, day),
                    response.url,
                    response.status,
                    response.attempts,
                    response.fetched_at,
                    response.text,
                )
            )
    return rows


def store_responses(con: duckdb.DuckDBPyConnection, spec: ApiSourceSpec, window: DateWindow, rows: list[tuple]) -> None:
    """Replace the window's stored responses (call inside one transaction)."""
    create_responses_table(con, spec)
    table = sql.ident(spec.responses_table)
    con.execute(f"DELETE FROM {table} WHERE {sql.in_window('landing_date', window)}")
    if rows:
        con.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
