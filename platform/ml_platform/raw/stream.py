"""What the raw layer keeps of a stream (a Kafka topic): its lineage columns, the offsets it has
read, and the offset range of every batch.

A stream source's raw table is the shared raw table (`raw.table.RAW_COLUMNS`) with five more
lineage columns: the message's topic, partition, offset, timestamp and key. Two tables hold the
rest, shared by every stream source and written in the raw write's transaction, with its rows:

- `stream_offsets`: per source, topic and partition, the next offset to read. It is the only
  record of what has been read: the consumer group's offsets in Kafka are never consulted.
- `stream_batches`: what each raw run did per partition: the offset range it read
  (`status = 'read'`: [first_offset, end_offset), its landing day, batch name and ingestion
  time), or the range it found deleted by retention before it was read (`status = 'lost'`).
  A re-run of a past landing day re-reads exactly its `read` ranges (docs/streaming.md), and
  the raw `messages` check reports the `lost` ones.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from ml_platform.raw.spec import SourceSpec
from ml_platform.raw.table import RAW_COLUMNS, create_ledger_table
from ml_platform.warehouse import sql
from ml_platform.warehouse.sql import DateWindow

OFFSETS_TABLE = "stream_offsets"
# Tag of an asset brought up to date in the same run as a stream source's raw asset (its value:
# the source's name): the source's lag sensor requests it with every raw run (stream feature views).
MICRO_BATCH_TAG = "ml_platform/micro_batch_of"
BATCHES_TABLE = "stream_batches"
READ = "read"
LOST = "lost"

# The raw table's columns beyond the shared ones: where each row came from in the stream.
LINEAGE_COLUMNS = """,
  kafka_topic VARCHAR NOT NULL,
  kafka_partition INTEGER NOT NULL,
  kafka_offset BIGINT NOT NULL,
  kafka_timestamp TIMESTAMP,
  kafka_key VARCHAR
"""

OFFSETS_COLUMNS = """
  source VARCHAR NOT NULL,
  topic VARCHAR NOT NULL,
  partition INTEGER NOT NULL,
  next_offset BIGINT NOT NULL,
  committed_at TIMESTAMP NOT NULL,
  run_id VARCHAR,
  PRIMARY KEY (source, topic, partition)
"""

BATCHES_COLUMNS = """
  source VARCHAR NOT NULL,
  landing_date DATE NOT NULL,
  topic VARCHAR NOT NULL,
  partition INTEGER NOT NULL,
  first_offset BIGINT NOT NULL,
  end_offset BIGINT NOT NULL,
  status VARCHAR NOT NULL,
  source_file VARCHAR,
  messages BIGINT NOT NULL,
  rows BIGINT NOT NULL,
  rejected BIGINT NOT NULL,
  ingested_at TIMESTAMP NOT NULL,
  run_id VARCHAR
"""


def batch_name(topic: str, partition: int, first: int, end: int) -> str:
    """The raw `source_file` of one partition's batch: kafka:<topic>/<partition>/<first>-<last> (inclusive)."""
    return f"kafka:{topic}/{partition}/{first}-{end - 1}"


def create_stream_tables(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> None:
    """The source's raw table with the stream's lineage columns, the ledger, and the two stream tables."""
    con.execute(f"CREATE TABLE IF NOT EXISTS {sql.ident(spec.raw_table)} ({RAW_COLUMNS}{LINEAGE_COLUMNS})")
    create_ledger_table(con)
    con.execute(f"CREATE TABLE IF NOT EXISTS {sql.ident(OFFSETS_TABLE)} ({OFFSETS_COLUMNS})")
    con.execute(f"CREATE TABLE IF NOT EXISTS {sql.ident(BATCHES_TABLE)} ({BATCHES_COLUMNS})")


def stored_offsets(con: duckdb.DuckDBPyConnection, spec: SourceSpec, topic: str) -> dict[int, int]:
    """Partition -> the next offset to read, as the warehouse holds it (absent: never read)."""
    rows = con.execute(
        f"SELECT partition, next_offset FROM {sql.ident(OFFSETS_TABLE)} WHERE source = ? AND topic = ?",
        [spec.name, topic],
    ).fetchall()
    return dict(rows)


def store_offsets(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    topic: str,
    offsets: dict[int, int],
    committed_at: dt.datetime,
    run_id: str | None,
) -> None:
    """Record the next offset to read of each partition (call in the raw write's transaction)."""
    if offsets:
        con.executemany(
            f"INSERT OR REPLACE INTO {sql.ident(OFFSETS_TABLE)} VALUES (?, ?, ?, ?, ?, ?)",
            [(spec.name, topic, p, o, committed_at, run_id) for p, o in sorted(offsets.items())],
        )


def record_batches(con: duckdb.DuckDBPyConnection, rows: list[tuple]) -> None:
    """Insert `stream_batches` rows (tuples in the table's column order)."""
    if rows:
        con.executemany(f"INSERT INTO {sql.ident(BATCHES_TABLE)} VALUES ({', '.join('?' * 13)})", rows)


def _scope(spec: SourceSpec, window: DateWindow) -> str:
    return f"source = {sql.literal(spec.name)} AND {sql.in_window('landing_date', window)}"


def read_batches(con: duckdb.DuckDBPyConnection, spec: SourceSpec, window: DateWindow) -> list[tuple]:
    """(landing_date, topic, partition, first_offset, end_offset, source_file, ingested_at) of every
    range the window's landing days read, in offset order."""
    return con.execute(
        f"""SELECT landing_date, topic, partition, first_offset, end_offset, source_file, ingested_at
            FROM {sql.ident(BATCHES_TABLE)} WHERE {_scope(spec, window)} AND status = {sql.literal(READ)}
            ORDER BY topic, partition, first_offset"""
    ).fetchall()


def update_read_batches(con: duckdb.DuckDBPyConnection, spec: SourceSpec, window: DateWindow, counts: dict) -> None:
    """After a re-read: each batch's messages, rows and rejected as found now (source_file -> counts)."""
    for source_file, (messages, rows, rejected) in counts.items():
        con.execute(
            f"""UPDATE {sql.ident(BATCHES_TABLE)} SET messages = ?, rows = ?, rejected = ?
                WHERE {_scope(spec, window)} AND source_file = ? AND status = {sql.literal(READ)}""",
            [messages, rows, rejected, source_file],
        )


def batch_figures(con: duckdb.DuckDBPyConnection, spec: SourceSpec, window: DateWindow) -> list[tuple]:
    """(landing_date, topic, partition, status, first_offset, end_offset, messages, rejected) of the
    window's batches, read and lost, in day and offset order."""
    return con.execute(
        f"""SELECT landing_date, topic, partition, status, first_offset, end_offset, messages, rejected
            FROM {sql.ident(BATCHES_TABLE)} WHERE {_scope(spec, window)}
            ORDER BY landing_date, topic, partition, first_offset"""
    ).fetchall()
