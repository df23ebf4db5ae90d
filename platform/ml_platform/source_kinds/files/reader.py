"""Reads one landed file into the raw table: every row kept, every value kept as text.

Each row becomes a JSON object of the file's own column names and text values, with lineage
(file, row number, landing date, ingestion time, detected schema version), and the file gets
its ingest-ledger row (see `ml_platform.ingestion.raw_table`).
"""

from __future__ import annotations

import datetime as dt

import duckdb

from ml_platform.ingestion.raw_table import detect_schema_version, record_batch
from ml_platform.source_kinds.files.landing import LandedFile
from ml_platform.source_kinds.files.spec import FileSourceSpec
from ml_platform.warehouse import sql


class UnreadableFileError(ValueError):
    """A landed file the platform cannot parse; names the file so it can be fixed or replaced."""


def _records_sql(file: LandedFile) -> str:
    """SELECT (source_row, record) for the file, values as text."""
    path = sql.literal(str(file.path))
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
    rows = con.execute(f"SELECT DISTINCT unnest(json_keys(record)) AS k FROM ({records_sql}) ORDER BY k").fetchall()
    return [r[0] for r in rows]


def ingest_file(
    con: duckdb.DuckDBPyConnection, spec: FileSourceSpec, file: LandedFile, ingested_at: dt.datetime
) -> dict:
    """Append one file to the raw table and the ingest ledger; returns its ledger summary."""
    records_sql = _records_sql(file)
    try:
        columns = _file_columns(con, records_sql)
        version = detect_schema_version(spec, columns)
        inserted = con.execute(
            f"""
            INSERT INTO {sql.ident(spec.raw_table)}
            SELECT {sql.literal(file.landing_date)}, {sql.literal(file.relative_path)}, source_row,
                   {sql.literal(ingested_at)}, {sql.literal(version)}, record
            FROM ({records_sql})
            """
        ).fetchone()[0]
    except duckdb.Error as exc:
        raise UnreadableFileError(f"{file.relative_path}: cannot be read as {file.format}: {exc}") from exc
    modified_at = dt.datetime.fromtimestamp(file.mtime_ns / 1e9, tz=dt.UTC).replace(tzinfo=None)
    return record_batch(
        con,
        spec,
        landing_date=file.landing_date,
        source_file=file.relative_path,
        format=file.format,
        row_count=inserted,
        columns=columns,
        schema_version=version,
        ingested_at=ingested_at,
        size_bytes=file.size,
        modified_at=modified_at,
    )
