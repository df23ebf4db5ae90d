"""The file source kind's spec: files landing in `landing/<folder>/<YYYY-MM-DD>/`, and how to read them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal, get_args

import dagster as dg

from ml_platform.contracts.freshness import Landing
from ml_platform.ingestion.files.landing_store import landing_store
from ml_platform.raw.spec import SourceSpec

# json: a JSON array of records, or JSON Lines written with a `.json` name (told apart by content).
FileFormat = Literal["csv", "jsonl", "json", "parquet"]
FILE_FORMATS: tuple[str, ...] = get_args(FileFormat)
# What a text file without a byte-order mark is decoded as (a mark, when present, decides: UTF-8,
# UTF-16 or UTF-32). utf-16 without a mark is little-endian, as Windows writes it.
FileEncoding = Literal["utf-8", "latin-1", "windows-1252", "utf-16", "utf-16-le", "utf-16-be"]
FILE_ENCODINGS: tuple[str, ...] = get_args(FileEncoding)
# What a line that is not valid UTF-8 is decoded with; both map every byte. None: such a line is
# rejected instead.
FallbackEncoding = Literal["windows-1252", "latin-1"]
FALLBACK_ENCODINGS: tuple[str, ...] = get_args(FallbackEncoding)
# DuckDB's own default line limit: a longer line is rejected (recorded with its line number).
DEFAULT_MAX_LINE_BYTES = 2_097_152


@dataclass(frozen=True, kw_only=True)
class FileSourceSpec(SourceSpec):
    """Files landing in `landing/<name>/<YYYY-MM-DD>/` (the folder is the landing date, UTC)."""

    formats: tuple[FileFormat, ...] = FILE_FORMATS
    # Folder under the landing root (`ML_PLATFORM_DATA_DIR/landing/`); the source's name by default.
    landing: str | None = None
    # Text files (CSV, JSON Lines, JSON), plain or compressed (gzip, zstd), are decoded with this
    # unless a byte-order mark says otherwise (docs/reading-files.md).
    encoding: FileEncoding = "utf-8"
    # A line of a UTF-8 file that is not valid UTF-8 is decoded with this and kept (the ledger
    # counts such lines); None rejects it instead.
    fallback_encoding: FallbackEncoding | None = "windows-1252"
    # CSV field separator; None detects it per file (DuckDB's sniffer), falling back to ','.
    delimiter: str | None = None
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    # The raw `files` check turns ERROR when more than this share of a day's files cannot be read
    # at all (below it, WARN: the readable files are ingested and the day goes on).
    max_unreadable_file_share: float = 0.2

    def __post_init__(self):
        super().__post_init__()
        unknown = set(self.formats) - set(FILE_FORMATS)
        if unknown:
            raise ValueError(f"source {self.name}: unsupported formats {sorted(unknown)}")
        if self.encoding not in FILE_ENCODINGS:
            raise ValueError(f"source {self.name}: encoding must be one of {FILE_ENCODINGS}")
        if self.fallback_encoding is not None and self.fallback_encoding not in FALLBACK_ENCODINGS:
            raise ValueError(f"source {self.name}: fallback_encoding must be None or one of {FALLBACK_ENCODINGS}")
        if self.delimiter is not None and len(self.delimiter) != 1:
            raise ValueError(f"source {self.name}: delimiter must be one character")

    def null_markers(self, column: str) -> tuple[str, ...]:
        """An empty value is no value in any file format (DuckDB reads an empty CSV field as NULL
        already); beside it, only the markers the source declares."""
        return ("", *(m for m in super().null_markers(column) if m != ""))

    @property
    def landing_folder(self) -> str:
        return self.landing or self.name

    @property
    def landing_place(self) -> str:
        return f"landing/{self.landing_folder}/"

    def newest_landing(self, instance: dg.DagsterInstance) -> Landing | None:
        """The newest readable file of the newest date folder that holds one, ingested or not (the
        landing freshness check is about the producer).

        The date folder is the landing day (UTC) by the layout's contract, so new data lands in the
        newest folders; only those are listed, newest first, so a tick's cost does not grow with the
        landing history. Within a folder the newest is the latest arrival (the later of mtime and
        ctime, as for the landing sensor: a file moved in with an old mtime arrived now).
        """
        store = landing_store()
        for day, folder in reversed(store.date_folders(self.landing_folder)):
            files = store.landed_files(self.landing_folder, self.formats, folders=[(day, folder)])
            if files:
                newest = max(files, key=lambda f: (f.arrived_ns, f.relative_path))
                return Landing(
                    f"file landing/{newest.relative_path}", dt.datetime.fromtimestamp(newest.arrived_ns / 1e9, dt.UTC)
                )
        return None
