"""The file source kind's spec: files landing in `landing/<folder>/<YYYY-MM-DD>/`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from ml_platform.ingestion.spec import SourceSpec

FileFormat = Literal["csv", "jsonl", "parquet"]
FILE_FORMATS: tuple[str, ...] = get_args(FileFormat)


@dataclass(frozen=True, kw_only=True)
class FileSourceSpec(SourceSpec):
    """Files landing in `landing/<name>/<YYYY-MM-DD>/` (the folder is the landing date, UTC)."""

    formats: tuple[FileFormat, ...] = FILE_FORMATS
    # Folder under the landing root (`ML_PLATFORM_DATA_DIR/landing/`); the source's name by default.
    landing: str | None = None

    def __post_init__(self):
        super().__post_init__()
        unknown = set(self.formats) - set(FILE_FORMATS)
        if unknown:
            raise ValueError(f"source {self.name}: unsupported formats {sorted(unknown)}")

    @property
    def landing_folder(self) -> str:
        return self.landing or self.name
