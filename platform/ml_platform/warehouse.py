"""The DuckDB warehouse as a Dagster resource: short write transactions, lock-aware connects.

DuckDB allows one writing process per file. Runs are serialized by the `duckdb` pool (see
dagster.yaml), but a reader such as a test or a notebook can still hold the file for a moment,
so connecting retries with backoff instead of failing the run on the first lock error.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

LOCK_RETRY_SECONDS = 120.0


def connect(path: str | Path, read_only: bool = False, retry_seconds: float = LOCK_RETRY_SECONDS):
    """Open the warehouse in UTC, retrying while another process holds the file lock."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + retry_seconds
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    # UTC everywhere: TIMESTAMPTZ arithmetic and casts must not depend on the host's zone.
    con.execute("SET TimeZone = 'UTC'")
    return con


class Warehouse(dg.ConfigurableResource):
    """The DuckDB file that holds every layer's tables."""

    path: str

    @contextmanager
    def read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only view; falls back to read-write before the file exists."""
        con = connect(self.path, read_only=Path(self.path).exists())
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One atomic unit of work: everything commits together or nothing does."""
        con = connect(self.path)
        try:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        finally:
            con.close()
