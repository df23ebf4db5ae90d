"""Raw runs that write a lake table, so runs of different days write in parallel
(`ML_PLATFORM_PARALLEL_RAW=true`; docs/scaling.md says why Apache Iceberg).

In this mode a file source's raw run does its work (listing, parsing, accounting, checks) in a
DuckDB file of its own, outside the warehouse, so any number of runs can work at once. Each day it
wrote becomes one Parquet file under a new name in the raw table's lake location
(`<lake>/<table>/data/landing_date=<day>/<run id>.parquet`, `ml_platform.lakehouse.catalog`). Then
the run commits, in two steps:

1. the days' files replace the days in the Iceberg table (`lakehouse.replace`: one catalog commit,
   redone when another run's commit got in first): the table is now the new one for every engine;
2. one short warehouse transaction replaces the days' ledger and quarantine rows with the run's and
   points the warehouse's raw view at the table's newest metadata.

Readers of the warehouse (the clean layer, checks, notebooks) see a run's days and their ledger rows
at once. A run killed between the two steps leaves the table new and the ledger old for its days
until the days run again (automation retries the failed run); a run killed before step 1 leaves only
files no metadata names, removed by housekeeping. Two runs of the same day: the later commit wins.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from ml_platform import settings
from ml_platform.lakehouse import replace, scan, tables
from ml_platform.partitions import window_days
from ml_platform.raw.spec import SourceSpec
from ml_platform.raw.table import LEDGER_TABLE, RAW_COLUMNS, create_ledger_table, ledger_scope
from ml_platform.warehouse import sql
from ml_platform.warehouse.resource import connect
from ml_platform.warehouse.sql import DateWindow

PARTITION_COLUMN = "landing_date"
RUN_FILE = "run.duckdb"
# The per-day file catalog this mode kept in the warehouse before its tables moved to Iceberg: its
# files are adopted into the lake table once (`adopt_partition_files`), then its rows go.
OLD_CATALOG_TABLE = "partition_files"


def enabled() -> bool:
    return settings.parallel_raw()


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
    """Each day of the window as one Parquet file in the lake table's location: (day, file or None
    when empty, rows). The lake table is created (or widened) from the run's table first."""
    files = tables.write_day_files(
        run_con,
        table,
        sql.ident(table),
        PARTITION_COLUMN,
        run_id,
        where=sql.in_window(PARTITION_COLUMN, window),
        order_by="source_file, source_row",
    )
    return [(day, *files.get(day, (None, 0))) for day in window_days(window)]


def adopt_partition_files(warehouse_con: duckdb.DuckDBPyConnection, table: str, run_id: str) -> int:
    """Before the lake table's first commit: the days of the per-day catalog this mode kept in the
    warehouse before (`partition_files`), copied into the lake table, so no day written then is
    lost. (Copied, not added: those files keep `record` as Parquet JSON, which Iceberg has no type
    for.) Returns the days adopted; their catalog rows go in the run's warehouse transaction."""
    # The warehouse first: a run's cheapest question, and the answer in every warehouse but old ones.
    if not warehouse_con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [OLD_CATALOG_TABLE]
    ).fetchone()[0]:
        return 0
    lake_table = tables.load_table(table)
    if lake_table is not None and lake_table.current_snapshot() is not None:
        return 0
    rows = warehouse_con.execute(
        f"SELECT partition_date, file_url FROM {OLD_CATALOG_TABLE} WHERE table_name = ? ORDER BY 1", [table]
    ).fetchall()
    if not any(url for _, url in rows):
        return 0
    with run_folder(f"adopt-{run_id}") as folder:
        con = open_run_database(folder)
        try:
            old = [url for _, url in rows if url]
            con.execute(f"CREATE TABLE {sql.ident(table)} AS SELECT * FROM read_parquet({sql.string_list(old)})")
            written = write_files(con, table, (rows[0][0], rows[-1][0]), f"adopted-{run_id}")
        finally:
            con.close()
    replace.replace_partitions(table, [day for day, _ in rows], [url for _, url, _ in written if url], run_id)
    return len(rows)


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


def commit_files(
    table: str, window: DateWindow, written: list[tuple[dt.date, str | None, int]], run_id: str
) -> replace.Commit:
    """Step 1 of the commit: the window's days replaced by the run's files in the lake table."""
    return replace.replace_partitions(table, window_days(window), [url for _, url, _ in written if url], run_id)


def commit_bookkeeping(
    warehouse_con: duckdb.DuckDBPyConnection, spec: SourceSpec, window: DateWindow, bookkeeping: dict[str, object]
) -> int:
    """Step 2, inside the warehouse transaction: replace the window's `bookkeeping` rows
    (`bookkeeping_rows`), point the raw view at the table's newest metadata. Returns its rows."""
    create_ledger_table(warehouse_con)
    scope = ledger_scope(spec, window)
    for table, rows in bookkeeping.items():
        warehouse_con.execute(f"DELETE FROM {sql.ident(table)} WHERE {scope}")
        warehouse_con.register("run_rows", rows)
        warehouse_con.execute(f"INSERT INTO {sql.ident(table)} BY NAME SELECT * FROM run_rows")
        warehouse_con.unregister("run_rows")
    if warehouse_con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [OLD_CATALOG_TABLE]
    ).fetchone()[0]:
        warehouse_con.execute(f"DELETE FROM {OLD_CATALOG_TABLE} WHERE table_name = ?", [spec.raw_table])
    return refresh_view(warehouse_con, spec.raw_table)


def refresh_view(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """The raw table as a view over the lake table's newest snapshot (an empty raw table while there
    is no lake table); returns its rows. The catalog only moves forward, and views are redefined
    under the warehouse's lock, so a view never goes back to an older snapshot. A raw *table* with
    rows, left from the embedded mode, is refused: its rows would be lost."""
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
    lake_table = tables.load_table(table)
    if lake_table is None:
        # No run has written the table yet: the raw table, empty, until one does.
        con.execute(f"DROP VIEW IF EXISTS {sql.ident(table)}")
        con.execute(f"CREATE TABLE {sql.ident(table)} ({RAW_COLUMNS})")
        return 0
    con.execute(f"CREATE OR REPLACE VIEW {sql.ident(table)} AS SELECT * FROM {scan.scan_sql(lake_table)}")
    snapshot = lake_table.current_snapshot()
    return int(snapshot.summary["total-records"]) if snapshot else 0
