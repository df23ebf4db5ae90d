"""Parquet files: read whole or not at all, checked against the row count in their own footer.

A Parquet file has no lines to reject one by one: it is either readable (every row kept, values
as JSON text) or quarantined with a reason that tells a truncated copy from a file that is not
Parquet at all.
"""

from __future__ import annotations

import duckdb

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


def read_parquet_file(scratch: duckdb.DuckDBPyConnection, spec: FileSourceSpec, file: LandedFile) -> FileRead:
    _check_markers(file)
    path = sql.literal(file.url)
    try:
        expected = scratch.execute(f"SELECT sum(num_rows) FROM parquet_file_metadata({path})").fetchone()[0] or 0
        scratch.execute(
            f"CREATE TABLE {RECORDS} AS SELECT row_number() OVER () AS source_row, to_json(t)::JSON AS record"
            f" FROM read_parquet({path}) t"
        )
        columns = [row[0] for row in scratch.execute(f"DESCRIBE SELECT * FROM read_parquet({path})").fetchall()]
    except duckdb.Error as exc:
        raise UnreadableFile("corrupt Parquet file: re-export it", str(exc)) from exc
    create_empty(scratch, REJECTS)
    read = scratch.execute(f"SELECT count(*) FROM {RECORDS}").fetchone()[0]
    return FileRead(columns, read, 0, expected_units=int(expected), accounted_units=read, unit="rows in the footer")
