"""Parquet files: read whole or not at all, checked against the row count in their own footer.

A Parquet file has no lines to reject one by one: it is either readable (every row kept, values
as JSON text) or quarantined with a reason that tells a truncated copy from a file that is not
Parquet at all. Column names that name a contract column in another case or with spaces around
are read under the contract's name (`columns`).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from ml_platform.ingestion.files.columns import contract_names, renamed
from ml_platform.ingestion.files.landing import LandedFile
from ml_platform.ingestion.files.scan import RECORDS, REJECTS, FileRead, UnreadableFile, create_empty
from ml_platform.ingestion.files.spec import FileSourceSpec
from ml_platform.warehouse import sql

MAGIC = b"PAR1"


def _check_markers(file: LandedFile) -> None:
    with file.open() as f:
        head = f.read(4)
        f.seek(max(file.size - 4, 0))
        tail = f.read(4)
    if head != MAGIC:
        looks = "text (CSV or JSON?)" if head and all(32 <= b < 127 or b in b"\r\n\t" for b in head) else "binary data"
        raise UnreadableFile(
            f"not a Parquet file (no PAR1 marker; it starts like {looks}): land it with its real extension"
        )
    if tail != MAGIC:
        raise UnreadableFile("truncated Parquet file (no footer): the copy was cut short, land it again")


def _schema_names(scratch: duckdb.DuckDBPyConnection, path: str) -> list[str]:
    """The top-level column names as the file's schema holds them. DuckDB's own names differ for
    names equal but for case: it renames the second (`EVENT_ID` beside `event_id` becomes
    `EVENT_ID_1`), which would hide the clash from `contract_names`."""
    rows = scratch.execute(f"SELECT name, num_children FROM parquet_schema({path})").fetchall()

    def past(i: int) -> int:  # the index after element i and its children (depth first)
        end = i + 1
        for _ in range(rows[i][1] or 0):
            end = past(end)
        return end

    names, i = [], 1  # element 0 is the schema's root
    for _ in range((rows[0][1] or 0) if rows else 0):
        names.append(rows[i][0])
        i = past(i)
    return names


def read_parquet_file(
    scratch: duckdb.DuckDBPyConnection, spec: FileSourceSpec, file: LandedFile, work: Path
) -> FileRead:
    _check_markers(file)
    path = sql.literal(file.url)
    try:
        expected = scratch.execute(f"SELECT sum(num_rows) FROM parquet_file_metadata({path})").fetchone()[0] or 0
        described = [row[0] for row in scratch.execute(f"DESCRIBE SELECT * FROM read_parquet({path})").fetchall()]
        landed = _schema_names(scratch, path) or described
    except duckdb.Error as exc:
        raise UnreadableFile("corrupt Parquet file: re-export it", str(exc)) from exc
    columns = contract_names(spec, landed, what="columns")
    select = ", ".join(
        f"{sql.ident(before)} AS {sql.ident(after)}" for before, after in zip(described, columns, strict=True)
    )
    try:
        scratch.execute(
            f"CREATE TABLE {RECORDS} AS SELECT row_number() OVER () AS source_row, to_json(t)::JSON AS record"
            f" FROM (SELECT {select} FROM read_parquet({path})) t"
        )
    except duckdb.Error as exc:
        raise UnreadableFile("corrupt Parquet file: re-export it", str(exc)) from exc
    create_empty(scratch, REJECTS)
    read = scratch.execute(f"SELECT count(*) FROM {RECORDS}").fetchone()[0]
    return FileRead(
        columns,
        read,
        0,
        expected_units=int(expected),
        accounted_units=read,
        unit="rows in the footer",
        renamed=renamed(landed, columns),
    )
