"""What every file format's reader shares: the outcome of reading one file (with the count, taken
apart from the parser, that rows read and rejected must add up to), a file that cannot be read at
all, and the SQL measuring the lines a record or a rejected line spans. Text files' lines are
counted where they are decompressed and decoded (`text`).

A format reader parses one file on a scratch in-memory DuckDB connection, never on the
warehouse's: in DuckDB a failed statement aborts its whole transaction, so a broken file parsed
inside the raw write would undo the other files of its day. The reader leaves two scratch tables,
`RECORDS` (source_row, record: a JSON object of text values) and `REJECTS` (line, reason,
reader_error, content), which the raw write copies over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

import duckdb

from ml_platform.warehouse import sql


class Openable(Protocol):
    """A landed file: a local one, or an S3 object (`landing.LandedFile`)."""

    def open(self) -> BinaryIO: ...


RECORDS = "records"
REJECTS = "rejects"

# A run of line breaks inside a value (RE2 syntax): each run starts one more non-blank line.
LINE_BREAK_RUN = r"\r?\n(?:\r?\n)*"
ESCAPED_LF = r"\n"


def create_empty(scratch: duckdb.DuckDBPyConnection, *tables: str) -> None:
    """Create RECORDS and/or REJECTS empty, for a reader that has nothing to put in them."""
    ddl = {
        RECORDS: "source_row BIGINT, record JSON",
        REJECTS: "line BIGINT, reason VARCHAR, reader_error VARCHAR, content VARCHAR",
    }
    for table in tables:
        scratch.execute(f"CREATE TABLE {table} ({ddl[table]})")


class UnreadableFile(Exception):
    """Nothing in the file can be read. `reason` says what to do about it; `reader_error` is the
    reader's own message."""

    def __init__(self, reason: str, reader_error: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.reader_error = reader_error


@dataclass
class FileRead:
    """What reading one file gave."""

    columns: list[str]
    rows_read: int
    rows_rejected: int
    # The rows the file holds by a count independent of the parser (lines, array elements,
    # Parquet row count), and the rows read + rejected as counted the same way. They must match.
    expected_units: int
    accounted_units: int
    unit: str = "lines"
    # File-level problems in words (e.g. duplicate header names), beside any rejected rows.
    notes: list[str] = field(default_factory=list)
    # How a text file was read (`text.TextFile`): the compression found, the encoding, and how
    # many lines were decoded with the source's fallback encoding. None for Parquet.
    compression: str | None = None
    encoding: str | None = None
    fallback_lines: int = 0
    # Column names as landed -> as read, where they differ (matched to the contract: `columns`).
    renamed: dict[str, str] = field(default_factory=dict)

    @property
    def accounted(self) -> bool:
        return self.expected_units == self.accounted_units


def extra_lines_sql(text: str) -> str:
    """SQL: how many more non-blank lines than one a text value spans (its runs of line breaks)."""
    return f"coalesce(length(regexp_extract_all({text}, {sql.literal(LINE_BREAK_RUN)})), 0)"


def record_lines_sql(record: str) -> str:
    """SQL: the non-blank lines a record (JSON object of text values) spans in a text file."""
    # JSON text never holds a raw line break; the escaped `\\n` marks values worth measuring.
    spanning = f"list_sum(list_transform(json_extract_string({record}, '$.*'), v -> {extra_lines_sql('v')}))"
    return f"1 + CASE WHEN contains(CAST({record} AS VARCHAR), {sql.literal(ESCAPED_LF)}) THEN coalesce({spanning}, 0) ELSE 0 END"
