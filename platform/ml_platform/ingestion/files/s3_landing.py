"""What has landed under an S3 prefix: `s3://bucket/prefix/landing/<source>/<YYYY-MM-DD>/<file>`.

The same layout and rules as the local folder (`landing`): the date folder is the landing date
(UTC) and the raw partition; names starting with `.` or `_` are private; files of formats the
source does not read, or outside a date folder, are reported (`unsupported`). S3 has no links, so
nothing is refused. An object's identity is its key, size and ETag: overwriting it with new
content changes the ETag, so it is ingested again; its arrival is its LastModified.

Objects are listed through dagster-aws's `S3Resource` client (`ml_platform.storage.aws`), read by
DuckDB straight from S3 (`ml_platform.warehouse.s3`), and their bytes, where a reader looks
at them itself, through ranged GETs pinned to the listed ETag (`ml_platform.storage.s3_object`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import duckdb

from ml_platform.ingestion.files.landing import LandedFile, file_format, parse_landing_date
from ml_platform.storage.aws import AwsAccess, s3_client
from ml_platform.storage.location import LANDING, S3Location
from ml_platform.storage.s3_object import open_object
from ml_platform.warehouse.s3 import attach_s3

LIST_PAGE = 1000


@dataclass(frozen=True)
class S3Landing:
    location: S3Location
    access: AwsAccess

    def where(self, source: str) -> str:
        return self.location.url(LANDING, source) + "/"

    # What LandedFile asks of its origin.
    def open(self, file: LandedFile):
        key = self.location.key(LANDING, file.relative_path)
        return open_object(s3_client(self.access), self.location.bucket, key, file.size, file.etag)

    def attach(self, con: duckdb.DuckDBPyConnection) -> None:
        attach_s3(con, self.access)

    def _objects(self, prefix: str, delimiter: str | None = None) -> Iterator[dict]:
        """Every object (and, with `delimiter`, common prefix as {"Prefix": ...}) under `prefix`."""
        paginator = s3_client(self.access).get_paginator("list_objects_v2")
        extra = {"Delimiter": delimiter} if delimiter else {}
        for page in paginator.paginate(
            Bucket=self.location.bucket, Prefix=prefix, PaginationConfig={"PageSize": LIST_PAGE}, **extra
        ):
            yield from page.get("Contents", [])
            yield from page.get("CommonPrefixes", [])

    def _source_prefix(self, source: str) -> str:
        return self.location.key(LANDING, source) + "/"

    def date_folders(self, source: str, dates: tuple[dt.date, dt.date] | None = None) -> list[tuple[dt.date, str]]:
        """The source's date folders (date, key prefix), in date order; one listing of the source's
        top level, whatever the folders hold."""
        folders = []
        for entry in self._objects(self._source_prefix(source), delimiter="/"):
            if "Prefix" not in entry:
                continue
            day = parse_landing_date(entry["Prefix"].rstrip("/").rsplit("/", 1)[-1])
            if day and (dates is None or dates[0] <= day <= dates[1]):
                folders.append((day, entry["Prefix"]))
        return sorted(folders)

    def landed_files(
        self,
        source: str,
        formats: tuple[str, ...],
        dates: tuple[dt.date, dt.date] | None = None,
        folders: list[tuple[dt.date, str]] | None = None,
    ) -> list[LandedFile]:
        """Objects of `source` in landing order (date, name); `dates` limits to a landing-date range,
        `folders` to chosen date folders. Without either, one listing of the whole source prefix."""
        if folders is None and dates is None:
            entries = self._objects(self._source_prefix(source))
        else:
            chosen = folders if folders is not None else self.date_folders(source, dates)
            entries = (entry for _, prefix in chosen for entry in self._objects(prefix))
        found = [landed for entry in entries if (landed := self._landed(entry, formats)) is not None]
        return sorted(found, key=lambda f: (f.landing_date, f.relative_path))

    def _landed(self, entry: dict, formats: tuple[str, ...]) -> LandedFile | None:
        relative = self.location.relative(entry["Key"])[len(LANDING) + 1 :]
        parts = relative.split("/")
        if len(parts) != 3 or parts[2].startswith((".", "_")):
            return None
        day = parse_landing_date(parts[1])
        fmt = file_format(parts[2])
        if day is None or fmt not in formats:
            return None
        modified_ns = int(entry["LastModified"].timestamp()) * 1_000_000_000
        return LandedFile(
            self.location.url(LANDING, relative),
            relative,
            day,
            fmt,
            entry["Size"],
            modified_ns,
            modified_ns,
            etag=entry["ETag"],
            origin=self,
        )

    def window_listing(
        self, source: str, formats: tuple[str, ...], dates: tuple[dt.date, dt.date]
    ) -> tuple[list[LandedFile], list[str], dict[str, str]]:
        """What a raw run of a landing-date range reads, in one listing of the source's top level and
        of each date folder in the range: the objects to ingest, the visible ones the source cannot
        read (wrong format, nested, or outside a date folder, which belongs to every run) as paths
        under the landing root, and the refused ones (none: an S3 prefix has no symbolic links)."""
        files, unsupported = [], []
        for entry in self._objects(self._source_prefix(source), delimiter="/"):
            prefix = entry.get("Prefix")
            day = parse_landing_date(prefix.rstrip("/").rsplit("/", 1)[-1]) if prefix else None
            if day and not dates[0] <= day <= dates[1]:
                continue
            for obj in self._objects(prefix) if prefix else [entry]:
                relative = self.location.relative(obj["Key"])[len(LANDING) + 1 :]
                if any(part.startswith((".", "_")) for part in relative.split("/")[1:]):
                    continue
                landed = self._landed(obj, formats)
                if landed is None:
                    unsupported.append(relative)
                else:
                    files.append(landed)
        return sorted(files, key=lambda f: (f.landing_date, f.relative_path)), sorted(unsupported), {}
