"""The DuckDB warehouse as a Dagster resource: dagster-duckdb's `DuckDBResource`, made safe to share.

Configured the way the Dagster docs show (`Warehouse(database="path/to/file.duckdb")`), and
`get_connection()` works as it does in `DuckDBResource`. On top it adds what the platform needs:
- UTC on every connection, so TIMESTAMPTZ arithmetic never depends on the host's zone;
- `read()`: a read-only connection, for checks and previews, that does not take the write lock;
- `transaction()`: one atomic unit of work (BEGIN … COMMIT, ROLLBACK on any error), starting with
  the work the packages above registered (`on_begin`: the views of lake tables brought to the
  catalog's current snapshots);
- a memory limit on every connection (`settings.duckdb_memory_limit`): big windows spill to disk
  instead of growing the process;
- connecting retries with backoff while another process holds the file lock. Runs are
  serialized by the `duckdb` pool (dagster.yaml), but a reader such as a notebook can still hold
  the file for a moment; DuckDBResource's own retry gives up after about a second.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import duckdb
from dagster_duckdb import DuckDBResource

from ml_platform import settings
from ml_platform.warehouse.extensions import autoloaded_config

LOCK_RETRY_SECONDS = 120.0
T = TypeVar("T")
# The Dagster pool of every asset that writes the warehouse; dagster.yaml lets one step hold it at a time.
WAREHOUSE_POOL = "duckdb"


def retry_on_lock(open_file: Callable[[], T], retry_seconds: float = LOCK_RETRY_SECONDS) -> T:
    """`open_file()` (a connect, an ATTACH), retried with backoff while another process holds the
    file lock, for at most `retry_seconds`."""
    deadline = time.monotonic() + retry_seconds
    delay = 0.05
    while True:
        try:
            return open_file()
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def connect(
    path: str | Path, read_only: bool = False, retry_seconds: float = LOCK_RETRY_SECONDS, config: dict | None = None
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse in UTC, retrying while another process holds the file lock."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = retry_on_lock(
        lambda: duckdb.connect(str(path), read_only=read_only, config=duckdb_config(config)), retry_seconds
    )
    con.execute("SET TimeZone = 'UTC'")
    lake_access(con)
    return con


def lake_access(con: duckdb.DuckDBPyConnection) -> None:
    """When tables are lake tables (raw.lake_run, lakehouse.staged), the warehouse's views of them
    scan Iceberg tables, on S3 when storage is: give `con` what reading them takes (the iceberg
    extension is autoloaded on first use, `duckdb_config`; S3 needs its credentials)."""
    if not settings.lake_tables():
        return
    # A lake table's files never change under their name (every write makes new names), so their
    # Parquet footers are kept once read: each check of a step reads the same files again.
    con.execute("SET parquet_metadata_cache = true")
    if settings.storage_url():
        # Imported here: storage builds on this package.
        from ml_platform.storage.aws import aws_access
        from ml_platform.warehouse.s3 import attach_s3

        attach_s3(con, aws_access())


def duckdb_config(config: dict | None = None) -> dict:
    """The settings every platform connection starts from (the memory limit; the iceberg extension
    loaded by the first query that reads a lake table), then `config`'s."""
    return {"memory_limit": settings.duckdb_memory_limit(), **autoloaded_config(), **(config or {})}


def scratch_connection(limited: bool = True) -> duckdb.DuckDBPyConnection:
    """An in-memory connection for work outside the warehouse (parsing a landed file), under the
    same memory limit unless `limited` is False (DuckDB's own default, 80% of RAM). It spills to a
    folder of its own process under the system's temp folder: DuckDB's default for in-memory
    databases is `.tmp` in the working directory."""
    spill = Path(tempfile.gettempdir()) / f"ml_platform-scratch-{os.getpid()}"
    config = {"temp_directory": str(spill)}
    return duckdb.connect(config=duckdb_config(config) if limited else config)


class Warehouse(DuckDBResource):
    """The DuckDB file that holds every layer's tables (`database`: its path)."""

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection in UTC (DuckDBResource's contract, with the lock-aware connect)."""
        con = connect(self.database, config=self.connection_config)
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only view; falls back to read-write before the file exists."""
        con = connect(self.database, read_only=Path(self.database).exists(), config=self.connection_config)
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One atomic unit of work: everything commits together or nothing does. Work registered
        with `before_commit` runs last, inside it; with `after_rollback`, after a rollback."""
        with self.get_connection() as con:
            con.execute("BEGIN TRANSACTION")
            hooks = _BEFORE_COMMIT[id(con)] = []
            undo = _AFTER_ROLLBACK[id(con)] = []
            try:
                for work in _ON_BEGIN:
                    work(con)
                yield con
                while hooks:
                    hooks.pop(0)(con)
            except BaseException:
                con.execute("ROLLBACK")
                for work in undo:
                    work()
                raise
            finally:
                _BEFORE_COMMIT.pop(id(con), None)
                _AFTER_ROLLBACK.pop(id(con), None)
            con.execute("COMMIT")


# Work run first in every `Warehouse.transaction()`, registered by the packages built on this one:
# `ml_platform.lakehouse.views` points the warehouse's views of lake tables at the catalog's current
# snapshots, so a write reads what other processes and engines committed.
_ON_BEGIN: list[Callable[[duckdb.DuckDBPyConnection], None]] = []


def on_begin(work: Callable[[duckdb.DuckDBPyConnection], None]) -> None:
    """Run `work(con)` first in every write transaction (once, however often it is registered)."""
    if work not in _ON_BEGIN:
        _ON_BEGIN.append(work)


# Connection id -> work to run just before its `Warehouse.transaction()` commits, and after it rolls back.
_BEFORE_COMMIT: dict[int, list[Callable[[duckdb.DuckDBPyConnection], None]]] = {}
_AFTER_ROLLBACK: dict[int, list[Callable[[], None]]] = {}


def before_commit(con: duckdb.DuckDBPyConnection, work: Callable[[duckdb.DuckDBPyConnection], None]) -> None:
    """Run `work(con)` inside `con`'s transaction, after the body and just before COMMIT (a write
    that must reach something else first: a lake table's commit, `ml_platform.lakehouse.staged`).
    If it raises, the transaction rolls back. Only inside `Warehouse.transaction()`."""
    if id(con) not in _BEFORE_COMMIT:
        raise RuntimeError("this write must run inside Warehouse.transaction(), which commits it")
    _BEFORE_COMMIT[id(con)].append(work)


def after_rollback(con: duckdb.DuckDBPyConnection, work: Callable[[], None]) -> None:
    """Run `work()` when `con`'s transaction rolls back (what the transaction made outside the
    warehouse and nothing will refer to: a lake write's files). Only inside `Warehouse.transaction()`."""
    if id(con) not in _AFTER_ROLLBACK:
        raise RuntimeError("this write must run inside Warehouse.transaction(), which rolls it back")
    _AFTER_ROLLBACK[id(con)].append(work)
