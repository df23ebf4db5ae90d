"""JSON Lines and JSON array files: every object kept, every other line or element rejected by number.

JSON Lines: DuckDB reads a clean file in one pass. When that fails (a malformed line), the file
is not UTF-8, or it has blank lines (so record and line numbers would differ), the lines are
split here and DuckDB's `json_valid` judges each: good objects are kept under their line number,
anything else is rejected with it. `.json` files hold either one JSON array of objects (each
element is a row, numbered from 1) or JSON Lines; the first character tells them apart.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from ml_platform.ingestion.files.landing import LandedFile
from ml_platform.ingestion.files.scan import RECORDS, REJECTS, FileRead, UnreadableFile, create_empty, line_counts
from ml_platform.ingestion.files.spec import FileSourceSpec
from ml_platform.warehouse import sql

PYTHON_ENCODINGS = {"utf-8": "utf-8", "latin-1": "latin-1", "utf-16": "utf-16"}
BOM = b"\xef\xbb\xbf"


def _judge(scratch: duckdb.DuckDBPyConnection, source_sql: str) -> None:
    """Split `source_sql`'s rows (n, text, kind: the JSON type, NULL when not JSON) into RECORDS
    (objects) and REJECTS (anything else, by number, with the reason)."""
    scratch.execute(f"CREATE TABLE judged AS {source_sql}")
    _split_judged(scratch)


def _split_judged(scratch: duckdb.DuckDBPyConnection) -> None:
    scratch.execute(
        f"CREATE TABLE {RECORDS} AS SELECT n AS source_row, CAST(text AS JSON) AS record FROM judged"
        " WHERE kind = 'OBJECT'"
    )
    scratch.execute(
        f"CREATE TABLE {REJECTS} AS SELECT n AS line,"
        " CASE WHEN kind IS NULL THEN 'not valid JSON' ELSE 'a JSON ' || lower(kind) || ', not an object' END AS reason,"
        " CAST(NULL AS VARCHAR) AS reader_error, CAST(text AS VARCHAR) AS content"
        " FROM judged WHERE kind IS DISTINCT FROM 'OBJECT'"
    )


def _parsed_sql(path: str, format: str, max_object_bytes: int) -> str:
    """Numbered values of DuckDB's own JSON reader (each already valid JSON)."""
    return (
        "SELECT row_number() OVER () AS n, json AS text, json_type(json) AS kind FROM read_json_objects("
        f"{sql.literal(path)}, format = {sql.literal(format)}, maximum_object_size = {max_object_bytes})"
    )


def _columns(scratch: duckdb.DuckDBPyConnection) -> list[str]:
    rows = scratch.execute(f"SELECT DISTINCT unnest(json_keys(record)) AS k FROM {RECORDS} ORDER BY k").fetchall()
    return [r[0] for r in rows]


def _finish(scratch: duckdb.DuckDBPyConnection, expected: int, extra_accounted: int = 0, unit: str = "lines"):
    read = scratch.execute(f"SELECT count(*) FROM {RECORDS}").fetchone()[0]
    rejected = scratch.execute(f"SELECT count(*) FROM {REJECTS}").fetchone()[0]
    return FileRead(_columns(scratch), read, rejected, expected, read + rejected + extra_accounted, unit=unit)


def read_json_lines(scratch: duckdb.DuckDBPyConnection, spec: FileSourceSpec, file: LandedFile) -> FileRead:
    lines, blank = line_counts(file)
    if spec.encoding == "utf-8" and blank == 0:
        try:
            scratch.execute(f"CREATE TABLE judged AS {_parsed_sql(file.url, 'newline_delimited', spec.max_line_bytes)}")
        except duckdb.Error:
            scratch.execute("DROP TABLE IF EXISTS judged")
        else:
            count, longest = scratch.execute(
                "SELECT count(*), coalesce(max(strlen(CAST(text AS VARCHAR))), 0) FROM judged"
            ).fetchone()
            if count == lines and longest <= spec.max_line_bytes:
                _split_judged(scratch)
                return _finish(scratch, lines)
            scratch.execute("DROP TABLE judged")
    return _read_line_by_line(scratch, spec, file, lines - blank)


def _read_line_by_line(
    scratch: duckdb.DuckDBPyConnection, spec: FileSourceSpec, file: LandedFile, nonblank: int
) -> FileRead:
    numbers, texts, refused = [], [], []
    spaces_only = 0
    with file.open() as f:
        for number, raw in enumerate(f, start=1):
            line = raw.rstrip(b"\r\n")
            if number == 1 and line.startswith(BOM):
                line = line[len(BOM) :]
            if not line.strip():
                spaces_only += 1 if line else 0
                continue
            if len(line) > spec.max_line_bytes:
                reason = f"longer than max_line_bytes ({spec.max_line_bytes} bytes): raise the source's max_line_bytes"
                refused.append((number, reason, None, line[:200].decode("utf-8", "replace")))
                continue
            try:
                texts.append(line.decode(PYTHON_ENCODINGS[spec.encoding]))
            except UnicodeDecodeError as exc:
                reason = f"not valid {spec.encoding} text (declare the source's encoding, e.g. 'latin-1')"
                refused.append((number, reason, str(exc), line[:200].decode("utf-8", "replace")))
                continue
            numbers.append(number)
    lines_table = pa.table({"n": pa.array(numbers, pa.int64()), "text": pa.array(texts, pa.string())})
    scratch.register("split_lines", lines_table)
    _judge(
        scratch,
        "SELECT n, text, CASE WHEN json_valid(text) THEN json_type(CAST(text AS JSON)) END AS kind FROM split_lines",
    )
    if refused:
        scratch.executemany(f"INSERT INTO {REJECTS} VALUES (?, ?, ?, ?)", refused)
    return _finish(scratch, nonblank, extra_accounted=spaces_only)


def read_json_file(scratch: duckdb.DuckDBPyConnection, spec: FileSourceSpec, file: LandedFile) -> FileRead:
    """A `.json` file: an array of objects, or JSON Lines."""
    with file.open() as f:
        head = f.read(4096).removeprefix(BOM).lstrip()
    if not head:
        create_empty(scratch, RECORDS, REJECTS)
        return FileRead([], 0, 0, 0, 0)
    if head.startswith(b"{"):
        return read_json_lines(scratch, spec, file)
    if not head.startswith(b"["):
        raise UnreadableFile("not JSON: a .json file holds one array of objects, or one object per line")
    try:
        _judge(scratch, _parsed_sql(file.url, "array", max(spec.max_line_bytes, 1 << 24)))
        path = sql.literal(file.url)
        elements = scratch.execute(
            f"SELECT json_array_length(CAST(content AS JSON)) FROM read_text({path})"
        ).fetchone()[0]
    except duckdb.Error as exc:
        raise UnreadableFile(
            "not a valid JSON array (truncated or malformed): fix or re-export the file", str(exc)
        ) from exc
    return _finish(scratch, elements, unit="array elements")
