"""CSV files: DuckDB's reader in the source's dialect, every bad line rejected with its line number.

The file is first made readable (`text.read_text`: decompressed, decoded, its lines counted). Its
header is its first line, read here (Python's `csv` module on that line only), so its names are
known before DuckDB reads the body with an explicit column list: no sniffing of the body can fail
the file, duplicate or empty names are reported, names are matched to the contract (`columns`),
and every body line that does not fit (wrong number of fields, undecodable bytes, longer than
`max_line_bytes`, broken quoting) lands in DuckDB's reject table instead of failing the read.
A header whose quoting DuckDB would read past its line end (a quote opened and never closed, text
after a closing quote) is replaced by a plain line in a copy, so DuckDB's header is exactly the
first line and every other line is read or rejected. Values stay text (`VARCHAR`).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import duckdb

from ml_platform.ingestion.files.columns import contract_names, renamed
from ml_platform.ingestion.files.landing import LandedFile
from ml_platform.ingestion.files.scan import (
    RECORDS,
    REJECTS,
    FileRead,
    UnreadableFile,
    create_empty,
    extra_lines_sql,
    record_lines_sql,
)
from ml_platform.ingestion.files.spec import FileSourceSpec
from ml_platform.ingestion.files.text import TextFile, read_text
from ml_platform.warehouse import sql

PYTHON_ENCODINGS = {"utf-8": "utf-8-sig", "latin-1": "latin-1"}
NO_VALUE = "(empty)"  # how sniff_csv reports "no quote" / "no escape"
# What stands in for a header DuckDB would misread: one plain field, skipped like any header.
PLAIN_HEADER = b"header\n"

CANDIDATE_DELIMITERS = (",", ";", "\t", "|")


def _sniffed(scratch: duckdb.DuckDBPyConnection, spec: FileSourceSpec, text: TextFile) -> tuple[str, str, str] | None:
    """(delimiter, quote, escape) as DuckDB's sniffer sees the file, None when it cannot tell."""
    try:
        delimiter, quote, escape = scratch.execute(
            f"SELECT Delimiter, Quote, Escape FROM sniff_csv({sql.literal(text.url)},"
            f" encoding = {sql.literal(text.encoding)}, compression = {sql.literal(text.compression)},"
            f" max_line_size = {spec.max_line_bytes})"
        ).fetchone()
    except duckdb.Error:
        return None
    quote = '"' if quote == NO_VALUE else quote
    return delimiter, quote, quote if escape == NO_VALUE else escape


def _header_line(spec: FileSourceSpec, text: TextFile) -> str | None:
    """The first line as text (None for an empty file); raises UnreadableFile when it is not text."""
    with text.open() as f:
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
    if b"\x00" in line:
        raise UnreadableFile("the header line holds NUL bytes: a binary file, not CSV text")
    try:
        return line.decode(PYTHON_ENCODINGS[text.encoding])
    except UnicodeDecodeError as exc:
        raise UnreadableFile(
            f"the header line is not {text.encoding} text: declare the source's encoding (or a fallback_encoding)",
            str(exc),
        ) from exc


def _fields(line: str, delimiter: str, quote: str) -> list[str]:
    return next(csv.reader(io.StringIO(line), delimiter=delimiter, quotechar=quote), [])


def _dialect_and_header(
    scratch: duckdb.DuckDBPyConnection, spec: FileSourceSpec, text: TextFile
) -> tuple[tuple[str, str, str], str | None]:
    """The dialect and the header line (None for an empty file).

    The declared delimiter wins. Otherwise DuckDB's sniffer decides, unless its choice splits the
    header into one field only (it can misjudge a file with ragged rows): then the common
    delimiter that splits the header into the most fields is used.
    """
    line = _header_line(spec, text)
    if spec.delimiter is not None:
        dialect = (spec.delimiter, '"', '"')
    else:
        dialect = _sniffed(scratch, spec, text) or (",", '"', '"')
        if line is not None and len(_fields(line, dialect[0], dialect[1])) < 2:
            best = max(CANDIDATE_DELIMITERS, key=lambda d: len(_fields(line, d, '"')))
            if len(_fields(line, best, '"')) > 1:
                dialect = (best, '"', '"')
    return dialect, line


def _plainly_quoted(line: str, delimiter: str, quote: str, escape: str) -> bool:
    """Whether DuckDB reads `line` as one line: every field either holds no quote character, or
    is quoted whole (opened at its start, closed right before a delimiter or the line's end, any
    quote inside escaped). Anything else can make DuckDB's parser run on past the line's end."""
    text = line.rstrip("\r\n")
    if quote not in text and escape not in text:
        return True
    i, n = 0, len(text)
    while i <= n:
        if i < n and text[i] == quote:  # a quoted field
            i += 1
            while True:
                if i >= n:
                    return False  # never closed on this line
                if (
                    text[i] == escape
                    and i + 1 < n
                    and text[i + 1] in (quote, escape)
                    and escape != quote
                    or text[i] == quote
                    and i + 1 < n
                    and text[i + 1] == quote
                    and escape == quote
                ):
                    i += 2
                elif text[i] == quote:
                    i += 1
                    break
                else:
                    i += 1
            if i < n and text[i] != delimiter:
                return False  # text after the closing quote
        else:  # an unquoted field: no quote or escape character in it
            end = text.find(delimiter, i)
            end = n if end < 0 else end
            if quote in text[i:end] or escape in text[i:end]:
                return False
            i = end
        i += 1  # past the delimiter
    return True


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
        elif candidate != base:
            notes.append(f"duplicate column name {name!r} in the header: field {i + 1} read as {candidate!r}")
        seen.add(candidate)
        unique.append(candidate)
    return unique, notes


def _reason_sql(spec: FileSourceSpec, text: TextFile, fields: int) -> str:
    """SQL: the reason a person can act on, from DuckDB's reject error type."""
    reasons = {
        "INVALID ENCODING": (
            f"not valid {text.encoding} text (declare the source's encoding, or a fallback_encoding to decode such lines)"
        ),
        "MISSING COLUMNS": f"fewer fields than the header's {fields}",
        "TOO MANY COLUMNS": f"more fields than the header's {fields}",
        "LINE SIZE OVER MAXIMUM": (
            f"longer than max_line_bytes ({spec.max_line_bytes} bytes): raise the source's max_line_bytes to read it"
        ),
        "UNQUOTED VALUE": "a quote inside an unquoted field",
    }
    cases = " ".join(f"WHEN {sql.literal(k)} THEN {sql.literal(v)}" for k, v in reasons.items())
    return f"CASE error_type {cases} ELSE lower(CAST(error_type AS VARCHAR)) END"


def read_csv_file(scratch: duckdb.DuckDBPyConnection, spec: FileSourceSpec, file: LandedFile, work: Path) -> FileRead:
    text = read_text(file, file.url, encoding=spec.encoding, fallback_encoding=spec.fallback_encoding, work=work)
    facts = dict(compression=text.compressed, encoding=text.decoded_as, fallback_lines=text.fallback_lines)
    (delimiter, quote, escape), line = _dialect_and_header(scratch, spec, text)
    create_empty(scratch, REJECTS)
    if line is None:
        create_empty(scratch, RECORDS)
        return FileRead([], 0, 0, expected_units=text.nonblank_lines, accounted_units=0, **facts)
    notes = []
    if _plainly_quoted(line, delimiter, quote, escape):
        landed = header = _fields(line, delimiter, quote)
    else:
        # Its quotes cannot be quoting: the names are split at every delimiter, and quote
        # characters around a name are dropped (one inside a name stays).
        landed = line.rstrip("\r\n").split(delimiter)
        header = [name.strip().strip(quote) for name in landed]
        notes.append(
            "the header's quoting is broken (a quote opened and not closed, or text after a closing quote):"
            f" its names were split at every delimiter, quotes around them dropped: {line.strip()[:200]!r}"
        )
        text = text.copy(work / "plain_header.csv", first_line=PLAIN_HEADER)
    names, more_notes = _unique_names(contract_names(spec, [name.strip() for name in header]))
    notes += more_notes
    columns = "{" + ", ".join(f"{sql.literal(n)}: 'VARCHAR'" for n in names) + "}"
    scan = (
        f"read_csv({sql.literal(text.url)}, columns = {columns}, auto_detect = false, header = true,"
        f" delim = {sql.literal(delimiter)}, quote = {sql.literal(quote)}, escape = {sql.literal(escape)},"
        f" encoding = {sql.literal(text.encoding)}, compression = {sql.literal(text.compression)},"
        f" max_line_size = {spec.max_line_bytes}, strict_mode = true, null_padding = false,"
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
        FROM (SELECT *, {_reason_sql(spec, text, len(names))} AS reason FROM csv_rejects)
        GROUP BY line
        """
    )
    read, read_lines = scratch.execute(
        f"SELECT count(*), coalesce(sum({record_lines_sql('record')}), 0) FROM {RECORDS}"
    ).fetchone()
    rejected, rejected_lines = scratch.execute(
        f"SELECT count(*), coalesce(sum(1 + {extra_lines_sql('content')}), 0) FROM {REJECTS}"
    ).fetchone()
    return FileRead(
        names,
        read,
        rejected,
        expected_units=text.nonblank_lines,
        # The header is exactly the first line (a header DuckDB would read further was replaced).
        accounted_units=1 + int(read_lines) + int(rejected_lines),
        notes=notes,
        renamed=renamed(landed, names),
        **facts,
    )
