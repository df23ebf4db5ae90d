"""Raw partitions written as Parquet files, so raw runs of different days write in parallel
(`ML_PLATFORM_PARALLEL_RAW=true`; docs/scaling.md says why this design and not DuckLake).

In this mode a file source's raw run does its work (listing, parsing, accounting, checks) in a
DuckDB file of its own, outside the warehouse, so any number of runs can work at once. Each day
it wrote becomes one Parquet file under a new name,
`<lake>/raw/<table>/landing_date=<day>/<run id>.parquet` (`<lake>` is the S3 prefix, or
`<data>/lake` locally). Then one short transaction on the warehouse commits the run:

- one row per day in `partition_files` (table, day -> file; no file for a day with no rows),
  replacing the day's previous row: the swap that makes the new partition visible;
- the day's ledger and quarantine rows, copied from the run's file;
- the raw table, which here is a view over the current files, redefined.

Readers (the clean layer, checks, notebooks) query the raw table as before and see a run's days
all at once or not at all. Two runs of different days touch different rows; two runs of the same
day are ordered by the warehouse lock, and the later one's file wins. A run that fails before its
commit leaves only an unreferenced file. Superseded files are kept (an audit trail of what each
run read); removing those older than any reader is housekeeping.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from ml_platform import settings
from ml_platform.partitions import window_days
from ml_platform.raw.spec import SourceSpec
from ml_platform.raw.table import LEDGER_TABLE, RAW_COLUMNS, create_ledger_table, ledger_scope
from ml_platform.storage.location import s3_location
from ml_platform.warehouse import sql
from ml_platform.warehouse.resource import connect
from ml_platform.warehouse.sql import DateWindow

CATALOG_TABLE = "partition_files"
CATALOG_COLUMNS = """
  table_name VARCHAR NOT NULL,
  partition_date DATE NOT NULL,
  file_url VARCHAR,
  row_count BIGINT NOT NULL,
  run_id VARCHAR NOT NULL,
  committed_at TIMESTAMP NOT NULL,
  PRIMARY KEY (table_name, partition_date)
"""
RUN_FILE = "run.duckdb"


def enabled() -> bool:
    return settings.parallel_raw()


def lake_root() -> str:
    """Where partition files go: `<prefix>/lake` on S3, or `<data>/lake` locally."""
    location = s3_location()
    return location.url("lake") if location else str(settings.data_dir() / "lake")


@contextmanager
def run_folder(run_id: str) -> Iterator[Path]:
    """A temp folder for the run's own DuckDB file (`open_run_database`), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=f"ml_platform-run-{run_id[:8]}-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def open_run_database(folder: Path) -> duckdb.DuckDBPyConnection:
    """The run's own DuckDB file in `folder`; it spills there too."""
    # `connect` gives it S3 access when the partition files are on S3.
    return connect(folder / RUN_FILE, config={"temp_directory": str(folder / "spill")})


def hydrate_ledger(warehouse_con: duckdb.DuckDBPyConnection, run_con: duckdb.DuckDBPyConnection, spec) -> None:
    """Copy the source's ledger rows from the warehouse into the run's file: what the run reads
    of earlier batches (files it replaces, earlier value kinds)."""
    create_ledger_table(run_con)
    if warehouse_con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [LEDGER_TABLE]).fetchone()[0]:
        rows = warehouse_con.execute(f"SELECT * FROM {sql.ident(LEDGER_TABLE)} WHERE {ledger_scope(spec, None)}")
        run_con.register("warehouse_ledger", rows.to_arrow_table())
        run_con.execute(f"INSERT INTO {sql.ident(LEDGER_TABLE)} BY NAME SELECT * FROM warehouse_ledger")
        run_con.unregister("warehouse_ledger")


def write_files(
    run_con: duckdb.DuckDBPyConnection, table: str, window: DateWindow, run_id: str
) -> list[tuple[dt.date, str | None, int]]:
    """Each day of the window as one Parquet file: (day, file or None when empty, rows)."""
    written = []
    counts = dict(
        run_con.execute(
            f"SELECT landing_date, count(*) FROM {sql.ident(table)} WHERE {sql.in_window('landing_date', window)}"
            " GROUP BY ALL"
        ).fetchall()
    )
    for day in window_days(window):
        rows = counts.get(day, 0)
        url = None
        if rows:
            url = f"{lake_root()}/raw/{table}/landing_date={day.isoformat()}/{run_id}.parquet"
            if not url.startswith("s3://"):
                os.makedirs(os.path.dirname(url), exist_ok=True)
            select = (
                f"SELECT * FROM {sql.ident(table)} WHERE landing_date = {sql.literal(day)}"
                " ORDER BY source_file, source_row"
            )
            run_con.execute(sql.copy_to_parquet(select, url))
        written.append((day, url, rows))
    return written


def bookkeeping_rows(
    run_con: duckdb.DuckDBPyConnection, spec: SourceSpec, window: DateWindow, tables: tuple[str, ...]
) -> dict[str, object]:
    """The run's ledger rows and `tables`' rows (scoped by source and landing date, as the ledger is)
    for the window, as Arrow tables to commit with its files."""
    scope = ledger_scope(spec, window)
    return {
        table: run_con.execute(f"SELECT * FROM {sql.ident(table)} WHERE {scope}").to_arrow_table()
        for table in (LEDGER_TABLE, *tables)
    }


def commit(
    warehouse_con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    window: DateWindow,
    written: list[tuple[dt.date, str | None, int]],
    bookkeeping: dict[str, object],
    run_id: str,
) -> int:
    """Inside the warehouse transaction: swap in the window's files, replace the window's
    `bookkeeping` rows (`bookkeeping_rows`), redefine the raw view. Returns the raw table's rows."""
    warehouse_con.execute(f"CREATE TABLE IF NOT EXISTS {CATALOG_TABLE} ({CATALOG_COLUMNS})")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    warehouse_con.executemany(
        f"INSERT OR REPLACE INTO {CATALOG_TABLE} VALUES (?, ?, ?, ?, ?, ?)",
        [(spec.raw_table, day, url, rows, run_id, now) for day, url, rows in written],
    )
    create_ledger_table(warehouse_con)
    scope = ledger_scope(spec, window)
    for table, rows in bookkeeping.items():
        warehouse_con.execute(f"DELETE FROM {sql.ident(table)} WHERE {scope}")
        warehouse_con.register("run_rows", rows)
        warehouse_con.execute(f"INSERT INTO {sql.ident(table)} BY NAME SELECT * FROM run_rows")
        warehouse_con.unregister("run_rows")
    refresh_view(warehouse_con, spec.raw_table)
    return warehouse_con.execute(
        f"SELECT coalesce(sum(row_count), 0) FROM {CATALOG_TABLE} WHERE table_name = ?", [spec.raw_table]
    ).fetchone()[0]


def refresh_view(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """The raw table as a view over its current files (an empty raw table while there are none).
    A raw *table* with rows, left from the embedded mode, is refused: its rows would be lost."""
    existing = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND schema_name = 'main'", [table]
    ).fetchone()[0]
    if existing:
        if con.execute(f"SELECT count(*) FROM {sql.ident(table)}").fetchone()[0]:
            raise RuntimeError(
                f"{table} is a table with rows, written before ML_PLATFORM_PARALLEL_RAW was set: rebuild the"
                " warehouse in this mode (run the raw partitions again), or unset it"
            )
        con.execute(f"DROP TABLE {sql.ident(table)}")
    files = [
        row[0]
        for row in con.execute(
            f"SELECT file_url FROM {CATALOG_TABLE} WHERE table_name = ? AND file_url IS NOT NULL ORDER BY partition_date",
            [table],
        ).fetchall()
    ]
    if not files:
        # No day holds a row yet: the raw table, empty, until one does.
        con.execute(f"DROP VIEW IF EXISTS {sql.ident(table)}")
        con.execute(f"CREATE TABLE {sql.ident(table)} ({RAW_COLUMNS})")
        return
    # The day is in each file's path (landing_date=...): a query of some days opens only their
    # files, not every file's footer (on S3, a request each).
    con.execute(
        f"CREATE OR REPLACE VIEW {sql.ident(table)} AS"
        f" SELECT * FROM read_parquet({sql.string_list(files)}, hive_partitioning = true)"
    )
