"""Reads one landed file into the raw table: every readable row kept, every value kept as text,
and everything else recorded.

Each row becomes a JSON object of the file's own column names and text values, with lineage
(file, row number, landing date, ingestion time, detected schema version), and the file gets
its ingest-ledger row (see `ml_platform.raw.table`). The format's reader parses the
file on a scratch connection (see `scan`); then, inside the raw write's transaction, its records
go to the raw table and its rejected lines to `rejected_lines`. A file that cannot be read at all,
or only in part, or whose rows do not add up to its own count, is also recorded in
`quarantined_files` with a reason; it never stops the other files of its day. The ledger row
also says how the file was read: the compression and encoding found, the lines decoded with the
source's fallback encoding, the column names matched to the contract, and how many values of each
column are null markers the clean layer reads as NULL.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import tempfile
from contextlib import ExitStack
from pathlib import Path

import duckdb

from ml_platform.ingestion.files.csv_file import read_csv_file
from ml_platform.ingestion.files.json_file import read_json_file, read_json_lines
from ml_platform.ingestion.files.landing import LandedFile
from ml_platform.ingestion.files.null_markers import null_marker_counts
from ml_platform.ingestion.files.parquet_file import read_parquet_file
from ml_platform.ingestion.files.scan import RECORDS, REJECTS, FileRead, UnreadableFile
from ml_platform.ingestion.files.spec import FileSourceSpec
from ml_platform.raw import quarantine
from ml_platform.raw.table import (
    INGESTED,
    PARTLY_READ,
    UNACCOUNTED,
    UNKNOWN_VERSION,
    UNREADABLE,
    Reading,
    detect_schema_version,
    record_batch,
)
from ml_platform.warehouse import sql
from ml_platform.warehouse.resource import scratch_connection

log = logging.getLogger(__name__)
READERS = {"csv": read_csv_file, "jsonl": read_json_lines, "json": read_json_file, "parquet": read_parquet_file}


def _read(scratch: duckdb.DuckDBPyConnection, spec: FileSourceSpec, file: LandedFile, work: Path) -> FileRead:
    try:
        return READERS[file.format](scratch, spec, file, work)
    except (UnreadableFile, duckdb.OutOfMemoryException, duckdb.HTTPException):
        # Not the file's fault: storage unreachable or refusing (credentials, network). The run
        # fails and rolls back instead of quarantining files that are fine.
        raise
    except (duckdb.Error, OSError, csv.Error, UnicodeError) as exc:
        raise UnreadableFile(f"cannot be read as {file.format}: fix or re-export the file", str(exc)) from exc


def _parse(
    stack: ExitStack, spec: FileSourceSpec, file: LandedFile, work: Path
) -> tuple[duckdb.DuckDBPyConnection, FileRead]:
    """The file parsed on a scratch connection, which `stack` (this function's alone) keeps open
    for the copy; `work` is a folder for the copies a reader may make (a transcoded text). The
    memory limit bounds big windows; it must not make a file unreadable: a file that does not fit
    is parsed again without it (DuckDB's CSV reader holds buffers per column, and 10,000 columns
    did not fit 512 MB)."""
    scratch = stack.enter_context(scratch_connection())
    file.prepare(scratch)
    try:
        return scratch, _read(scratch, spec, file, work)
    except duckdb.OutOfMemoryException as exc:
        log.warning("%s: %s; read again without the memory limit", file.relative_path, str(exc).splitlines()[0])
    stack.close()
    scratch = stack.enter_context(scratch_connection(limited=False))
    file.prepare(scratch)
    return scratch, _read(scratch, spec, file, work)


def _status(read: FileRead) -> tuple[str, str | None]:
    """The file's status and, unless it was ingested in full, the reason in words."""
    if not read.accounted:
        missing = read.expected_units - read.accounted_units
        return UNACCOUNTED, (
            f"{read.expected_units} {read.unit} in the file but {read.accounted_units} read or rejected"
            f" ({missing:+d} unaccounted for): rows may be lost, check the file and the reader"
        )
    problems = [*read.notes]
    if not read.columns and not read.rows_read and not read.rows_rejected:
        problems.append("empty file: no columns, no records")
    if read.rows_rejected:
        problems.insert(0, f"{read.rows_rejected} line(s) rejected, see rejected_lines")
    return (PARTLY_READ, "; ".join(problems)) if problems else (INGESTED, None)


def ingest_file(
    con: duckdb.DuckDBPyConnection, spec: FileSourceSpec, file: LandedFile, ingested_at: dt.datetime
) -> dict:
    """Append one file to the raw table, the ledger and, when not read in full, the quarantine
    tables; returns its ledger summary."""
    modified_at = dt.datetime.fromtimestamp(file.mtime_ns / 1e9, tz=dt.UTC).replace(tzinfo=None)
    batch = dict(
        landing_date=file.landing_date,
        source_file=file.relative_path,
        format=file.format,
        ingested_at=ingested_at,
        size_bytes=file.size,
        modified_at=modified_at,
    )
    where = dict(landing_date=file.landing_date, source_file=file.relative_path)
    # What quarantined_files records of the file, whatever went wrong.
    facts = dict(**where, format=file.format, size_bytes=file.size, recorded_at=ingested_at)
    # Copies (a transcoded text) go beside the scratch connection's spill folder, and go with the file.
    with tempfile.TemporaryDirectory(prefix="ml_platform-file-") as work, ExitStack() as stack:
        try:
            scratch, read = _parse(stack, spec, file, Path(work))
        except UnreadableFile as unreadable:
            quarantine.record_file(
                con, spec, **facts, status=UNREADABLE, reason=unreadable.reason, reader_error=unreadable.reader_error
            )
            summary = record_batch(
                con, spec, **batch, row_count=0, columns=[], schema_version=UNKNOWN_VERSION, status=UNREADABLE
            )
            return {**summary, "reason": unreadable.reason}
        version = detect_schema_version(spec, read.columns)
        nulls = null_marker_counts(scratch, spec, read.columns)
        # The records cross as Arrow's JSON type, which DuckDB takes as JSON without parsing every
        # record again: they are DuckDB's own JSON already. (As text cast back to JSON, the copy cost
        # 0.4 s per 200,000 records; now 0.03 s.)
        scratch.execute("SET arrow_lossless_conversion = true")
        con.register("landed_records", scratch.execute(f"SELECT source_row, record FROM {RECORDS}").to_arrow_reader())
        inserted = con.execute(
            f"""
            INSERT INTO {sql.ident(spec.raw_table)}
            SELECT {sql.literal(file.landing_date)}, {sql.literal(file.relative_path)}, source_row,
                   {sql.literal(ingested_at)}, {sql.literal(version)}, record
            FROM landed_records
            """
        ).fetchone()[0]
        con.unregister("landed_records")
        if read.rows_rejected:
            con.register("landed_rejects", scratch.execute(f"SELECT * FROM {REJECTS}").to_arrow_table())
            quarantine.record_rejected_lines(con, spec, **where, rejects_sql="SELECT * FROM landed_rejects")
            con.unregister("landed_rejects")
    status, reason = _status(read)
    summary = record_batch(
        con,
        spec,
        **batch,
        row_count=inserted,
        columns=read.columns,
        schema_version=version,
        rows_rejected=read.rows_rejected,
        status=status,
        reading=Reading(read.compression, read.encoding, read.fallback_lines, read.renamed, nulls),
    )
    if reason is None:
        return summary
    quarantine.record_file(
        con, spec, **facts, status=status, reason=reason, rows_read=inserted, rows_rejected=read.rows_rejected
    )
    return {**summary, "reason": reason}
