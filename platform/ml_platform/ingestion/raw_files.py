"""Reads one landed file into the raw layer: every row kept, every value kept as text.

Each row becomes a JSON object of the file's own column names and text values, with lineage
(file, row number, landing date, ingestion time, detected schema version). Keeping values
untyped means no row is lost to a type error; typing happens in the clean layer, where a
failure is quarantined with the rule it broke. The raw table shape and the ingest ledger are
shared by every source kind (files, databases, APIs), so one clean layer serves them all.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from ml_platform.contracts.table_contract import quote, sql_literal
from ml_platform.ingestion.landing import LandedFile
from ml_platform.sources.spec import FileSourceSpec, SourceSpec

RAW_COLUMNS = """
  landing_date DATE NOT NULL,
  source_file VARCHAR NOT NULL,
  source_row BIGINT NOT NULL,
  ingested_at TIMESTAMP NOT NULL,
  schema_version VARCHAR NOT NULL,
  record JSON NOT NULL
"""

# One row per ingested batch (a landed file, a database extraction, an API response set): what
# came in, with which columns. The clean layer checks schema policies against it.
LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS ingest_ledger (
  source VARCHAR NOT NULL,
  landing_date DATE NOT NULL,
  source_file VARCHAR NOT NULL,
  format VARCHAR NOT NULL,
  size_bytes BIGINT,
  modified_at TIMESTAMP,
  row_count BIGINT NOT NULL,
  columns VARCHAR[] NOT NULL,
  schema_version VARCHAR NOT NULL,
  ingested_at TIMESTAMP NOT NULL
)
"""


class UnreadableFileError(ValueError):
    """A landed file the platform cannot parse; names the file so it can be fixed or replaced."""


def _records_sql(file: LandedFile) -> str:
    """SELECT (source_row, record) for the file, values as text."""
    path = sql_literal(str(file.path))
    if file.format == "csv":
        scan = f"read_csv({path}, all_varchar = true, header = true)"
        return f"SELECT row_number() OVER () AS source_row, to_json(t) AS record FROM {scan} t"
    if file.format == "jsonl":
        scan = f"read_json_objects({path}, format = 'newline_delimited')"
        return f"SELECT row_number() OVER () AS source_row, json AS record FROM {scan}"
    if file.format == "parquet":
        return f"SELECT row_number() OVER () AS source_row, to_json(t) AS record FROM read_parquet({path}) t"
    raise UnreadableFileError(f"{file.relative_path}: unsupported format {file.format!r}")


def _file_columns(con: duckdb.DuckDBPyConnection, records_sql: str) -> list[str]:
    rows = con.execute(
        f"SELECT DISTINCT unnest(json_keys(record)) AS k FROM ({records_sql}) ORDER BY k"
    ).fetchall()
    return [r[0] for r in rows]


def detect_schema_version(spec: SourceSpec, columns: list[str]) -> str:
    for version, version_columns in spec.schema_versions.items():
        if set(version_columns) == set(columns):
            return version
    return "unknown"


def create_raw_tables(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> None:
    con.execute(f"CREATE TABLE IF NOT EXISTS {quote(spec.raw_table)} ({RAW_COLUMNS})")
    con.execute(LEDGER_DDL)


def replace_raw_window(con: duckdb.DuckDBPyConnection, spec: SourceSpec, window) -> None:
    """Forget what a window of landing days held, before writing it again (same transaction)."""
    create_raw_tables(con, spec)
    con.execute(f"DELETE FROM {quote(spec.raw_table)} WHERE landing_date BETWEEN ? AND ?", list(window))
    con.execute("DELETE FROM ingest_ledger WHERE source = ? AND landing_date BETWEEN ? AND ?", [spec.name, *window])


def record_batch(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, *, landing_date, source_file: str, format: str,
    row_count: int, columns: list[str], schema_version: str, ingested_at, size_bytes=None, modified_at=None,
) -> dict:
    con.execute(
        "INSERT INTO ingest_ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [spec.name, landing_date, source_file, format, size_bytes, modified_at, row_count, columns,
         schema_version, ingested_at],
    )
    return {"file": source_file, "rows": row_count, "schema_version": schema_version, "columns": columns}


def ingest_file(
    con: duckdb.DuckDBPyConnection, spec: FileSourceSpec, file: LandedFile, ingested_at: dt.datetime
) -> dict:
    """Append one file to the raw table and the landed-files ledger; returns its ledger row."""
    records_sql = _records_sql(file)
    try:
        columns = _file_columns(con, records_sql)
        version = detect_schema_version(spec, columns)
        inserted = con.execute(
            f"""
            INSERT INTO {quote(spec.raw_table)}
            SELECT ?::DATE, ?, source_row, ?::TIMESTAMP, ?, record FROM ({records_sql})
            """,
            [file.landing_date, file.relative_path, ingested_at, version],
        ).fetchone()[0]
    except duckdb.Error as exc:
        raise UnreadableFileError(f"{file.relative_path}: cannot be read as {file.format}: {exc}") from exc
    modified_at = dt.datetime.fromtimestamp(file.mtime_ns / 1e9, tz=dt.timezone.utc).replace(tzinfo=None)
    return record_batch(
        con, spec, landing_date=file.landing_date, source_file=file.relative_path, format=file.format,
        row_count=inserted, columns=columns, schema_version=version, ingested_at=ingested_at,
        size_bytes=file.size, modified_at=modified_at,
    )
