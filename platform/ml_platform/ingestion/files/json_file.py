"""JSON Lines and JSON array files: every object kept, every other line or element rejected by number.

The file is first made readable (`text.read_text`: decompressed, decoded into UTF-8 without a
byte-order mark, its lines counted). JSON Lines: DuckDB reads a clean file in one pass,
compressed or not. When that fails (a malformed line), a line is not UTF-8 (no fallback
declared), or the file has blank lines (so record and line numbers would differ), the lines are
split here and DuckDB's `json_valid` judges each: good objects are kept under their line number,
anything else is rejected with it. `.json` files hold either one JSON array of objects (each
element is a row, numbered from 1) or JSON Lines; the first character tells them apart. Keys
that name a contract column in another case or with spaces around are renamed (`columns`).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from ml_platform.ingestion.files.columns import contract_names, renamed
from ml_platform.ingestion.files.landing import LandedFile
from ml_platform.ingestion.files.scan import RECORDS, REJECTS, FileRead, UnreadableFile, create_empty
from ml_platform.ingestion.files.spec import FileSourceSpec
from ml_platform.ingestion.files.text import TextFile, read_text
from ml_platform.warehouse import sql

BOM = b"\xef\xbb\xbf"
# DuckDB's JSON reader names "no compression" its own way (read_csv's 'none' is an error there).
JSON_COMPRESSION = {"none": "uncompressed"}


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


def _parsed_sql(text: TextFile, format: str, max_object_bytes: int) -> str:
    """Numbered values of DuckDB's own JSON reader (each already valid JSON)."""
    return (
        "SELECT row_number() OVER () AS n, json AS text, json_type(json) AS kind FROM read_json_objects("
        f"{sql.literal(text.url)}, format = {sql.literal(format)}, maximum_object_size = {max_object_bytes},"
        f" compression = {sql.literal(JSON_COMPRESSION.get(text.compression, text.compression))})"
    )


def _keys(scratch: duckdb.DuckDBPyConnection) -> list[str]:
    rows = scratch.execute(f"SELECT DISTINCT unnest(json_keys(record)) AS k FROM {RECORDS} ORDER BY k").fetchall()
    return [r[0] for r in rows]


def _rename_keys(scratch: duckdb.DuckDBPyConnection, renames: dict[str, str]) -> None:
    """Rewrite the records with their keys renamed (order and values kept)."""
    mapping = "MAP {" + ", ".join(f"{sql.literal(k)}: {sql.literal(v)}" for k, v in renames.items()) + "}"
    entries = "map_entries(CAST(record AS MAP(VARCHAR, JSON)))"
    scratch.execute(
        f"CREATE OR REPLACE TABLE {RECORDS} AS SELECT source_row, CAST(to_json(map_from_entries(list_transform("
        f"{entries}, e -> struct_pack(k := coalesce({mapping}[e.key], e.key), v := e.value)))) AS JSON) AS record"
        f" FROM {RECORDS}"
    )


def _finish(
    scratch: duckdb.DuckDBPyConnection,
    spec: FileSourceSpec,
    text: TextFile,
    expected: int,
    extra_accounted: int = 0,
    unit: str = "lines",
) -> FileRead:
    keys = _keys(scratch)
    matched = contract_names(spec, keys, what="keys")
    renames = renamed(keys, matched)
    if renames:
        _rename_keys(scratch, renames)
    read = scratch.execute(f"SELECT count(*) FROM {RECORDS}").fetchone()[0]
    rejected = scratch.execute(f"SELECT count(*) FROM {REJECTS}").fetchone()[0]
    return FileRead(
        sorted(set(matched)),
        read,
        rejected,
        expected,
        read + rejected + extra_accounted,
        unit=unit,
        compression=text.compressed,
        encoding=text.decoded_as,
        fallback_lines=text.fallback_lines,
        renamed=renames,
    )


def _text(spec: FileSourceSpec, file: LandedFile, work: Path) -> TextFile:
    # DuckDB's JSON readers take UTF-8 only, and no byte-order mark.
    return read_text(
        file,
        file.url,
        encoding=spec.encoding,
        fallback_encoding=spec.fallback_encoding,
        work=work,
        duckdb_encodings=("utf-8",),
        mark_ok=False,
    )


def read_json_lines(
    scratch: duckdb.DuckDBPyConnection,
    spec: FileSourceSpec,
    file: LandedFile,
    work: Path,
    text: TextFile | None = None,
) -> FileRead:
    text = text or _text(spec, file, work)
    if text.blank_lines == 0:
        try:
            scratch.execute(f"CREATE TABLE judged AS {_parsed_sql(text, 'newline_delimited', spec.max_line_bytes)}")
        except duckdb.Error:
            scratch.execute("DROP TABLE IF EXISTS judged")
        else:
            count, longest = scratch.execute(
                "SELECT count(*), coalesce(max(strlen(CAST(text AS VARCHAR))), 0) FROM judged"
            ).fetchone()
            if count == text.lines and longest <= spec.max_line_bytes:
                _split_judged(scratch)
                return _finish(scratch, spec, text, text.lines)
            scratch.execute("DROP TABLE judged")
    return _read_line_by_line(scratch, spec, text)


def _read_line_by_line(scratch: duckdb.DuckDBPyConnection, spec: FileSourceSpec, text: TextFile) -> FileRead:
    numbers, texts, refused = [], [], []
    spaces_only = 0
    with text.open() as f:
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
                texts.append(line.decode("utf-8"))
            except UnicodeDecodeError as exc:
                # Only without a fallback_encoding: otherwise the line was decoded with it.
                reason = (
                    "not valid utf-8 text (declare the source's encoding, or a fallback_encoding to decode such lines)"
                )
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
    return _finish(scratch, spec, text, text.nonblank_lines, extra_accounted=spaces_only)


def read_json_file(scratch: duckdb.DuckDBPyConnection, spec: FileSourceSpec, file: LandedFile, work: Path) -> FileRead:
    """A `.json` file: an array of objects, or JSON Lines."""
    text = _text(spec, file, work)
    with text.open() as f:
        head = f.read(4096).removeprefix(BOM).lstrip()
    if not head:
        create_empty(scratch, RECORDS, REJECTS)
        return FileRead([], 0, 0, 0, 0, compression=text.compressed, encoding=text.decoded_as)
    if head.startswith(b"{"):
        return read_json_lines(scratch, spec, file, work, text)
    if not head.startswith(b"["):
        raise UnreadableFile("not JSON: a .json file holds one array of objects, or one object per line")
    if text.compression != "none":
        # DuckDB's read_text, which measures the array, does not decompress.
        text = text.copy(work / "array.json")
    try:
        _judge(scratch, _parsed_sql(text, "array", max(spec.max_line_bytes, 1 << 24)))
        path = sql.literal(text.url)
        elements = scratch.execute(
            f"SELECT json_array_length(CAST(content AS JSON)) FROM read_text({path})"
        ).fetchone()[0]
    except duckdb.Error as exc:
        raise UnreadableFile(
            "not a valid JSON array (truncated or malformed): fix or re-export the file", str(exc)
        ) from exc
    return _finish(scratch, spec, text, elements, unit="array elements")
