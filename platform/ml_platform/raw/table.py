"""The raw table shape and the ingest ledger, shared by every source kind.

Every kind writes raw rows the same way: the batch's values as a JSON record of text, with
lineage (landing date, source file or batch name, row number, ingestion time, detected schema
version). Keeping values untyped means no row is lost to a type error; typing happens in the
clean layer, where a failure is quarantined with the rule it broke. One ledger row per ingested
batch (a landed file, a database extraction, an API response) records what came in and with
which columns: the schema policy and the clean layer read it. A landed file's row also says how it
was read (`Reading`): compression, encoding, lines decoded with the source's fallback encoding,
column names matched to the contract, and values that are null markers.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

import duckdb

from ml_platform.contracts.writer import rows_per_day
from ml_platform.raw.spec import SourceSpec
from ml_platform.warehouse import sql
from ml_platform.warehouse.sql import DateWindow

LEDGER_TABLE = "ingest_ledger"
UNKNOWN_VERSION = "unknown"

# A batch's status in the ledger. Read: `ingested` (in full), `partly_read` (some lines rejected,
# or a header problem), `unaccounted` (rows read + rejected differ from the file's own count: an
# error). `unreadable`: nothing could be parsed (no rows, no columns).
INGESTED = "ingested"
PARTLY_READ = "partly_read"
UNACCOUNTED = "unaccounted"
UNREADABLE = "unreadable"

RAW_COLUMNS = """
  landing_date DATE NOT NULL,
  source_file VARCHAR NOT NULL,
  source_row BIGINT NOT NULL,
  ingested_at TIMESTAMP NOT NULL,
  schema_version VARCHAR NOT NULL,
  record JSON NOT NULL
"""

LEDGER_COLUMNS = """
  source VARCHAR NOT NULL,
  landing_date DATE NOT NULL,
  source_file VARCHAR NOT NULL,
  format VARCHAR NOT NULL,
  size_bytes BIGINT,
  modified_at TIMESTAMP,
  row_count BIGINT NOT NULL,
  columns VARCHAR[] NOT NULL,
  schema_version VARCHAR NOT NULL,
  ingested_at TIMESTAMP NOT NULL,
  rows_rejected BIGINT DEFAULT 0,
  status VARCHAR DEFAULT 'ingested'
"""
# Added after the first release: warehouses created before get them on their next raw write.
LEDGER_ADDED_COLUMNS = {
    "rows_rejected": "BIGINT DEFAULT 0",
    "status": "VARCHAR DEFAULT 'ingested'",
    # Column -> kind of its values (ml_platform.raw.value_kinds), set after the batch's rows.
    "column_types": "MAP(VARCHAR, VARCHAR)",
    # How a landed file was read (`Reading`); NULL for other batches.
    "compression": "VARCHAR",
    "encoding": "VARCHAR",
    "fallback_lines": "BIGINT DEFAULT 0",
    "renamed_columns": "MAP(VARCHAR, VARCHAR)",
    "null_markers": "JSON",
}
LEDGER_INSERT_COLUMNS = (
    "source",
    "landing_date",
    "source_file",
    "format",
    "size_bytes",
    "modified_at",
    "row_count",
    "columns",
    "schema_version",
    "ingested_at",
    "rows_rejected",
    "status",
    "compression",
    "encoding",
    "fallback_lines",
    "renamed_columns",
    "null_markers",
)


@dataclass(frozen=True)
class Reading:
    """How a landed file was read, for its ledger row."""

    compression: str | None = None  # gzip, zstd (found by the file's first bytes)
    encoding: str | None = None  # the encoding its text was decoded in
    fallback_lines: int = 0  # lines not valid in `encoding`, decoded with the source's fallback
    renamed_columns: dict[str, str] = field(default_factory=dict)  # as landed -> as read
    # column -> null marker -> how many of the file's values are that marker (the clean layer
    # reads them as NULL); the empty value, no value in any format, is not counted.
    null_markers: dict[str, dict[str, int]] = field(default_factory=dict)

    def summary(self) -> dict:
        """What the run's metadata shows of it: only what differs from a plain UTF-8 file."""
        shown = {
            "compression": self.compression,
            "encoding": None if self.encoding in (None, "utf-8") else self.encoding,
            "fallback_lines": self.fallback_lines,
            "renamed_columns": self.renamed_columns,
            "null_markers": self.null_markers,
        }
        return {k: v for k, v in shown.items() if v}


def ingestion_time() -> dt.datetime:
    """Now in UTC, naive: the warehouse stores timestamps without a zone."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def detect_schema_version(spec: SourceSpec, columns: list[str]) -> str:
    """The declared schema version whose column set equals the batch's, else 'unknown'."""
    for version, version_columns in spec.schema_versions.items():
        if set(version_columns) == set(columns):
            return version
    return UNKNOWN_VERSION


def create_raw_tables(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> None:
    # A no-op where they are views over their lake tables (`lake_run`).
    con.execute(f"CREATE TABLE IF NOT EXISTS {sql.ident(spec.raw_table)} ({RAW_COLUMNS})")
    create_ledger_table(con)


def create_ledger_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE TABLE IF NOT EXISTS {sql.ident(LEDGER_TABLE)} ({LEDGER_COLUMNS})")
    is_view = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE NOT temporary AND schema_name = 'main' AND view_name = ?",
        [LEDGER_TABLE],
    ).fetchone()[0]
    if is_view:
        return  # a view over the lake table: the run that writes it adds its columns
    for column, definition in LEDGER_ADDED_COLUMNS.items():
        con.execute(f"ALTER TABLE {sql.ident(LEDGER_TABLE)} ADD COLUMN IF NOT EXISTS {sql.ident(column)} {definition}")


def ledger_scope(spec: SourceSpec, window: DateWindow | None) -> str:
    """Predicate selecting the source's ledger rows of a landing window (all of them for None)."""
    return f"source = {sql.literal(spec.name)} AND {sql.in_window('landing_date', window)}"


def ingested_files(con: duckdb.DuckDBPyConnection, spec: SourceSpec, window: DateWindow) -> set[str]:
    """The batches (source files) the ledger holds for a landing window."""
    create_raw_tables(con, spec)
    rows = con.execute(f"SELECT source_file FROM {sql.ident(LEDGER_TABLE)} WHERE {ledger_scope(spec, window)}")
    return {r[0] for r in rows.fetchall()}


def replace_raw_window(con: duckdb.DuckDBPyConnection, spec: SourceSpec, window: DateWindow) -> None:
    """Forget what a window of landing days held, before writing it again (same transaction)."""
    create_raw_tables(con, spec)
    con.execute(f"DELETE FROM {sql.ident(spec.raw_table)} WHERE {sql.in_window('landing_date', window)}")
    con.execute(f"DELETE FROM {sql.ident(LEDGER_TABLE)} WHERE {ledger_scope(spec, window)}")


def record_batch(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    *,
    landing_date,
    source_file: str,
    format: str,
    row_count: int,
    columns: list[str],
    schema_version: str,
    ingested_at,
    size_bytes=None,
    modified_at=None,
    rows_rejected: int = 0,
    status: str = INGESTED,
    reading: Reading | None = None,
) -> dict:
    """One ledger row for an ingested batch; returns its summary for run metadata.

    `status` and `rows_rejected` say whether the batch was read in full (see
    `ml_platform.raw.quarantine` for the statuses of files); `reading`, how a file was read.
    """
    facts = reading or Reading()
    placeholders = ", ".join("?" for _ in LEDGER_INSERT_COLUMNS)
    con.execute(
        f"INSERT INTO {sql.ident(LEDGER_TABLE)} ({sql.columns_list(LEDGER_INSERT_COLUMNS)}) VALUES ({placeholders})",
        [
            spec.name,
            landing_date,
            source_file,
            format,
            size_bytes,
            modified_at,
            row_count,
            columns,
            schema_version,
            ingested_at,
            rows_rejected,
            status,
            facts.compression,
            facts.encoding,
            facts.fallback_lines,
            facts.renamed_columns or None,
            json.dumps(facts.null_markers) if facts.null_markers else None,
        ],
    )
    summary = {
        "file": source_file,
        "rows": row_count,
        "schema_version": schema_version,
        "columns": columns,
        **facts.summary(),
    }
    return summary if status == INGESTED else {**summary, "status": status, "rows_rejected": rows_rejected}


def schema_versions_label(ledger: list[dict]) -> str:
    """The schema versions of the ingested batches (ledger summaries), for run metadata."""
    return ", ".join(sorted({entry["schema_version"] for entry in ledger})) or "none"


def raw_partition_counts(con: duckdb.DuckDBPyConnection, spec: SourceSpec, window: DateWindow) -> dict[str, int]:
    """Raw rows per landing day of the window (zero for days without data)."""
    return rows_per_day(con, spec.raw_table, "landing_date", window)
