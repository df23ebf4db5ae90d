"""CSV files: DuckDB's reader in the source's dialect, every bad line rejected with its line number.

The header is read first (Python's `csv` module on the first line only), so its names are known
before DuckDB reads the body with an explicit column list: no sniffing of the body can fail
the file, duplicate or empty names are reported, and every body line that does not fit (wrong
number of fields, undecodable bytes, longer than `max_line_bytes`, broken quoting) lands in
DuckDB's reject table instead of failing the read. Values stay text (`VARCHAR`).
"""

from __future__ import annotations

import csv
import io

import duckdb

from ml_platform.ingestion.files.landing import LandedFile
from ml_platform.ingestion.files.scan import (
    RECORDS,
    REJECTS,
    FileRead,
    UnreadableFile,
    create_empty,
    extra_lines_sql,
    nonblank_lines,
    record_lines_sql,
)
from ml_platform.ingestion.files.spec import FileSourceSpec
from ml_platform.warehouse import sql

PYTHON_ENCODINGS = {"utf-8": "utf-8-sig", "latin-1": "latin-1", "utf-16": "utf-16"}
NO_VALUE = "(empty)"  # how sniff_csv reports "no quote" / "no escape"


CANDIDATE_DELIMITERS = (",", ";", "\t", "|")


def _sniffed(scratch: duckdb.DuckDBPyConnection, spec: FileSourceSpec, file: LandedFile) -> tuple[str, str, str] | None:
    """(delimiter, quote, escape) as DuckDB's sniffer sees the file, None when it cannot tell."""
    try:
        delimiter, quote, escape = scratch.execute(
            f"SELECT Delimiter, Quote, Escape FROM sniff_csv({sql.literal(file.url)},"
            f" encoding = {sql.literal(spec.encoding)}, max_line_size = {spec.max_line_bytes})"
        ).fetchone()
    except duckdb.Error:
        return None
    quote = '"' if quote == NO_VALUE else quote
    return delimiter, quote, quote if escape == NO_VALUE else escape


def _header_line(spec: FileSourceSpec, file: LandedFile) -> str | None:
    """The first line as text (None for an empty file); raises UnreadableFile when it is not text."""
    with file.open() as f:
        head = f.read(spec.max_line_bytes + 1)
    if not head.strip():
        return None
    end = head.find(b"\n")
    if end < 0 and len(head) > spec.max_line_bytes:
        raise UnreadableFile(
            f"the header line is longer than max_line_bytes ({spec.max_line_bytes} bytes):"
            " not a CSV file, or raise the source's max_line_bytes"
        )
    line = head if end < 0 else head[: end + 1]
    if b"\x00" in line and spec.encoding != "utf-16":
        raise UnreadableFile("the header line holds NUL bytes: a binary file, not CSV text")
    try:
        return line.decode(PYTHON_ENCODINGS[spec.encoding])
    except UnicodeDecodeError as exc:
        raise UnreadableFile(
            f"the header line is not {spec.encoding} text: a binary file, or declare the source's encoding",
            str(exc),
        ) from exc


def _fields(line: str, delimiter: str, quote: str) -> list[str]:
    return next(csv.reader(io.StringIO(line), delimiter=delimiter, quotechar=quote), [])


def _dialect_and_header(
    scratch: duckdb.DuckDBPyConnection, spec: FileSourceSpec, file: LandedFile
) -> tuple[tuple[str, str, str], list[str] | None]:
    """The dialect and the header's field names (None for an empty file).

    The declared delimiter wins. Otherwise DuckDB's sniffer decides, unless its choice splits the
    header into one field only (it can misjudge a file with ragged rows): then the common
    delimiter that splits the header into the most fields is used.
    """
    line = _header_line(spec, file)
    if spec.delimiter is not None:
        dialect = (spec.delimiter, '"', '"')
    else:
        dialect = _sniffed(scratch, spec, file) or (",", '"', '"')
        if line is not None and len(_fields(line, dialect[0], dialect[1])) < 2:
            best = max(CANDIDATE_DELIMITERS, key=lambda d: len(_fields(line, d, '"')))
            if len(_fields(line, best, '"')) > 1:
                dialect = (best, '"', '"')
    return dialect, None if line is None else _fields(line, dialect[0], dialect[1])


def _unique_names(names: list[str]) -> tuple[list[str], list[str]]:
    """Names DuckDB can hold (empty ones become columnN, repeats get _1, _2), and notes on any change."""
    unique, notes, seen = [], [], set()
    for i, name in enumerate(names):
        base = name.strip() or f"column{i}"
        candidate, n = base, 0
        while candidate in seen:
            n += 1
            candidate = f"{base}_{n}"
        if not name.strip():
            notes.append(f"header field {i + 1} is empty: read as {candidate!r}")
        elif candidate != name:
            notes.append(f"duplicate column name {name!r} in the header: field {i + 1} read as {candidate!r}")
        seen.add(candidate)
        unique.append(candidate)
    return unique, notes


def _reason_sql(spec: FileSourceSpec, fields: int) -> str:
    """SQL: the reason a person can act on, from DuckDB's reject error type."""
    reasons = {
        "INVALID ENCODING": f"not valid {spec.encoding} text (declare the source's encoding, e.g. 'latin-1')",
        "MISSING COLUMNS": f"fewer fields than the header's {fields}",
        "TOO MANY COLUMNS": f"more fields than the header's {fields}",
        "LINE SIZE OVER MAXIMUM": (
            f"longer than max_line_bytes ({spec.max_line_bytes} bytes): raise the source's max_line_bytes to read it"
        ),
        "UNQUOTED VALUE": "a quote inside an unquoted field",
    }
    cases = " ".join(f"WHEN {sql.literal(k)} THEN {sql.literal(v)}" for k, v in reasons.items())
    return f"CASE error_type {cases} ELSE lower(CAST(error_type AS VARCHAR)) END"


def read_csv_file(scratch: duckdb.DuckDBPyConnection, spec: FileSourceSpec, file: LandedFile) -> FileRead:
    lines = nonblank_lines(file)
    (delimiter, quote, escape), header = _dialect_and_header(scratch, spec, file)
    create_empty(scratch, REJECTS)
    if header is None:
        create_empty(scratch, RECORDS)
        return FileRead([], 0, 0, expected_units=lines, accounted_units=0)
    names, notes = _unique_names(header)
    columns = "{" + ", ".join(f"{sql.literal(n)}: 'VARCHAR'" for n in names) + "}"
    scan = (
        f"read_csv({sql.literal(file.url)}, columns = {columns}, auto_detect = false, header = true,"
        f" delim = {sql.literal(delimiter)}, quote = {sql.literal(quote)}, escape = {sql.literal(escape)},"
        f" encoding = {sql.literal(spec.encoding)}, max_line_size = {spec.max_line_bytes},"
        " strict_mode = true, null_padding = false,"
        " store_rejects = true, rejects_table = 'csv_rejects', rejects_scan = 'csv_scans')"
    )
    scratch.execute(
        f"CREATE TABLE {RECORDS} AS SELECT row_number() OVER () AS source_row, to_json(t)::JSON AS record FROM {scan} t"
    )
    # One row per rejected line, however many errors DuckDB found on it.
    scratch.execute(
        f"""
        INSERT INTO {REJECTS}
        SELECT line, string_agg(DISTINCT reason, '; ' ORDER BY reason), string_agg(DISTINCT error_message, '; '),
               any_value(trim(csv_line, {sql.literal(chr(13) + chr(10))}))
        FROM (SELECT *, {_reason_sql(spec, len(names))} AS reason FROM csv_rejects)
        GROUP BY line
        """
    )
    read, read_lines = scratch.execute(
        f"SELECT count(*), coalesce(sum({record_lines_sql('record')}), 0) FROM {RECORDS}"
    ).fetchone()
    rejected, rejected_lines = scratch.execute(
        f"SELECT count(*), coalesce(sum(1 + {extra_lines_sql('content')}), 0) FROM {REJECTS}"
    ).fetchone()
    header_lines = 1 + sum(1 for name in header if "\n" in name)
    return FileRead(
        names,
        read,
        rejected,
        expected_units=lines,
        accounted_units=header_lines + int(read_lines) + int(rejected_lines),
        notes=notes,
    )
