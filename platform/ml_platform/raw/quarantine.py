"""Where what could not be read is recorded: nothing is dropped unrecorded.

Two tables, shared by every file source and replaced with the raw partition they belong to (in
the raw write's transaction):
- `quarantined_files`: one row per file that was not ingested in full, with its status, a reason
  a person can act on, and the reader's own error;
- `rejected_lines`: one row per line (record, array element) of a file that was read only in
  part: its line number, why it was rejected, and the start of its content.
Files that were read in full appear only in the ingest ledger.

And one for streams, written with the raw rows of the batch the message was read in:
- `rejected_messages`: one row per message of a topic that is not a record the source can use
  (not JSON, not an object, over the size limit, an unreadable event time): its topic,
  partition and offset, the reason, and the start of its value.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from ml_platform.raw.spec import SourceSpec
from ml_platform.warehouse import sql
from ml_platform.warehouse.sql import DateWindow

QUARANTINED_FILES_TABLE = "quarantined_files"
REJECTED_LINES_TABLE = "rejected_lines"
# Both are scoped by source and landing date, as the ledger is.
TABLES = (QUARANTINED_FILES_TABLE, REJECTED_LINES_TABLE)
REJECTED_MESSAGES_TABLE = "rejected_messages"
# How much of a rejected line is kept: enough to recognise it, bounded so a 10 MB line stays small.
EXCERPT_CHARS = 200

# File statuses: those of the ledger (ingested, partly_read, unaccounted, unreadable), and for
# files never opened: `refused` (e.g. a symbolic link), `unsupported` (a format the source does
# not read).
REFUSED = "refused"
UNSUPPORTED = "unsupported"

QUARANTINED_FILES_COLUMNS = """
  source VARCHAR NOT NULL,
  landing_date DATE NOT NULL,
  source_file VARCHAR NOT NULL,
  format VARCHAR,
  size_bytes BIGINT,
  status VARCHAR NOT NULL,
  reason VARCHAR NOT NULL,
  reader_error VARCHAR,
  rows_read BIGINT NOT NULL,
  rows_rejected BIGINT NOT NULL,
  recorded_at TIMESTAMP NOT NULL
"""

REJECTED_LINES_COLUMNS = """
  source VARCHAR NOT NULL,
  landing_date DATE NOT NULL,
  source_file VARCHAR NOT NULL,
  line BIGINT NOT NULL,
  reason VARCHAR NOT NULL,
  reader_error VARCHAR,
  excerpt VARCHAR
"""


REJECTED_MESSAGES_COLUMNS = """
  source VARCHAR NOT NULL,
  landing_date DATE NOT NULL,
  source_file VARCHAR NOT NULL,
  topic VARCHAR NOT NULL,
  partition INTEGER NOT NULL,
  "offset" BIGINT NOT NULL,
  kafka_timestamp TIMESTAMP,
  kafka_key VARCHAR,
  size_bytes BIGINT NOT NULL,
  reason VARCHAR NOT NULL,
  excerpt VARCHAR,
  recorded_at TIMESTAMP NOT NULL
"""


def create_rejected_messages_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE TABLE IF NOT EXISTS {sql.ident(REJECTED_MESSAGES_TABLE)} ({REJECTED_MESSAGES_COLUMNS})")


def record_rejected_messages(con: duckdb.DuckDBPyConnection, spec: SourceSpec, rejects_sql: str) -> int:
    """Insert the rejected messages selected by `rejects_sql` (columns: landing_date, source_file,
    topic, partition, offset, kafka_timestamp, kafka_key, size_bytes, reason, content, recorded_at:
    the batch's ingestion time, so a re-read records the same rows); returns how many."""
    create_rejected_messages_table(con)
    return con.execute(
        f"""
        INSERT INTO {sql.ident(REJECTED_MESSAGES_TABLE)}
        SELECT {sql.literal(spec.name)}, landing_date, source_file, topic, partition, "offset", kafka_timestamp,
               kafka_key, size_bytes, reason, left(content, {EXCERPT_CHARS}), recorded_at
        FROM ({rejects_sql})
        """
    ).fetchone()[0]


def forget_rejected_messages(con: duckdb.DuckDBPyConnection, spec: SourceSpec, window: DateWindow) -> None:
    """Drop what a window of landing days rejected, before it is read again (same transaction)."""
    create_rejected_messages_table(con)
    con.execute(f"DELETE FROM {sql.ident(REJECTED_MESSAGES_TABLE)} WHERE {_scope(spec, window)}")


def create_quarantine_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE TABLE IF NOT EXISTS {sql.ident(QUARANTINED_FILES_TABLE)} ({QUARANTINED_FILES_COLUMNS})")
    con.execute(f"CREATE TABLE IF NOT EXISTS {sql.ident(REJECTED_LINES_TABLE)} ({REJECTED_LINES_COLUMNS})")


def _scope(spec: SourceSpec, window: DateWindow) -> str:
    return f"source = {sql.literal(spec.name)} AND {sql.in_window('landing_date', window)}"


def forget_quarantine_window(con: duckdb.DuckDBPyConnection, spec: SourceSpec, window: DateWindow) -> None:
    """Drop what a window of landing days recorded, before it is read again (same transaction)."""
    create_quarantine_tables(con)
    for table in TABLES:
        con.execute(f"DELETE FROM {sql.ident(table)} WHERE {_scope(spec, window)}")


def record_file(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    *,
    landing_date: dt.date,
    source_file: str,
    format: str | None,
    size_bytes: int | None,
    status: str,
    reason: str,
    reader_error: str | None = None,
    rows_read: int = 0,
    rows_rejected: int = 0,
    recorded_at: dt.datetime,
) -> dict:
    """One quarantined file; returns its summary for run metadata."""
    con.execute(
        f"INSERT INTO {sql.ident(QUARANTINED_FILES_TABLE)} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            spec.name,
            landing_date,
            source_file,
            format,
            size_bytes,
            status,
            reason,
            reader_error,
            rows_read,
            rows_rejected,
            recorded_at,
        ],
    )
    return {"file": source_file, "status": status, "reason": reason, "rows_rejected": rows_rejected}


def record_never_read(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    landing_date: dt.date,
    source_file: str,
    status: str,
    reason: str,
    recorded_at: dt.datetime,
) -> dict:
    """A file that was never opened (refused or unsupported): no format, size or rows to record."""
    return record_file(
        con,
        spec,
        landing_date=landing_date,
        source_file=source_file,
        format=None,
        size_bytes=None,
        status=status,
        reason=reason,
        recorded_at=recorded_at,
    )


def record_rejected_lines(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, landing_date: dt.date, source_file: str, rejects_sql: str
) -> int:
    """Insert the rejected lines selected by `rejects_sql` (columns: line, reason, reader_error,
    content), one row per line; returns how many lines were rejected."""
    return con.execute(
        f"""
        INSERT INTO {sql.ident(REJECTED_LINES_TABLE)}
        SELECT {sql.literal(spec.name)}, {sql.literal(landing_date)}, {sql.literal(source_file)},
               line, reason, reader_error, left(content, {EXCERPT_CHARS})
        FROM ({rejects_sql})
        """
    ).fetchone()[0]
