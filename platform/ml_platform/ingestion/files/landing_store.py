"""The landing area the file sources read: the local folder (default) or an S3 prefix, chosen by
`ML_PLATFORM_STORAGE`. Both answer the same questions, so the raw asset, the landing sensor and
the landing-freshness check have one body each:

- `where(source)`: the source's landing location, in words;
- `date_folders(source, dates)`: its date folders, in date order;
- `landed_files(source, formats, dates, folders)`: the files to ingest (`LandedFile`);
- `window_listing(source, formats, dates)`: what a raw run of a landing-date range reads: the
  files to ingest, the files it cannot read (paths under the root) and the files it refuses to
  read (with the reason).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from ml_platform import settings
from ml_platform.ingestion.files import landing
from ml_platform.ingestion.files.landing import LandedFile
from ml_platform.ingestion.files.s3_landing import S3Landing
from ml_platform.storage.aws import aws_access
from ml_platform.storage.location import s3_location

DateRange = tuple[dt.date, dt.date]


@dataclass(frozen=True)
class LocalLanding:
    root: Path

    def where(self, source: str) -> str:
        return f"landing/{source}/"

    def date_folders(self, source: str, dates: DateRange | None = None) -> list[tuple[dt.date, str]]:
        return landing.date_folders(self.root, source, dates)

    def landed_files(
        self,
        source: str,
        formats: tuple[str, ...],
        dates: DateRange | None = None,
        folders: list[tuple[dt.date, str]] | None = None,
    ) -> list[LandedFile]:
        return landing.landed_files(self.root, source, formats, dates, folders=folders)

    def window_listing(
        self, source: str, formats: tuple[str, ...], dates: DateRange
    ) -> tuple[list[LandedFile], list[str], dict[str, str]]:
        unsupported = landing.unsupported_files(self.root, source, formats, dates)
        return (
            landing.landed_files(self.root, source, formats, dates),
            [p.relative_to(self.root).as_posix() for p in unsupported],
            landing.refused_files(self.root, source, dates),
        )


LandingStore = LocalLanding | S3Landing


def landing_store() -> LandingStore:
    """The landing area the environment configures."""
    location = s3_location()
    if location is None:
        return LocalLanding(settings.landing_dir())
    return S3Landing(location, aws_access())
