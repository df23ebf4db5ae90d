"""What has landed: the files in a source's landing folder and their identity.

Layout: `landing/<source>/<YYYY-MM-DD>/<file>`; the folder is the landing date (UTC), the raw
partition the file belongs to. Names starting with `.`
or `_` are in-flight or private files and are ignored, so writers can land atomically by
renaming.

Only regular files that stay inside the landing root are read. A symbolic link (to a file or as a
date folder) could point anywhere on the machine, a system file included, whose content would then
reach the warehouse and the UI's check samples: it is refused, with the reason, never followed
(`refused_files`).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

FORMAT_BY_SUFFIX = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet"}
# A text format may also land compressed: `events.csv.gz`, `events.jsonl.zst`. The suffix only
# names the file; the reader goes by the file's first bytes (`text`). Parquet compresses inside.
COMPRESSION_SUFFIXES = (".gz", ".gzip", ".zst", ".zstd")
TEXT_FORMATS = ("csv", "jsonl", "json")


def file_format(name: str) -> str | None:
    """The format a file name says (`events.csv`, `events.csv.gz`), None for any other name."""
    stem, suffix = os.path.splitext(name.lower())
    if suffix in COMPRESSION_SUFFIXES:
        fmt = FORMAT_BY_SUFFIX.get(os.path.splitext(stem)[1])
        return fmt if fmt in TEXT_FORMATS else None
    return FORMAT_BY_SUFFIX.get(suffix)


@dataclass(frozen=True)
class LandedFile:
    path: Path | str  # the local file, or the object's s3:// URL
    relative_path: str  # posix path under the landing root: the file's name in lineage
    landing_date: dt.date
    format: str
    size: int
    mtime_ns: int
    # When the file arrived here: a rename, `cp -p` or `rsync -a` keeps an old mtime but sets
    # ctime to now, so the later of the two is when the platform could first have seen it.
    arrived_ns: int
    # An S3 object's ETag: its content's identity (S3 times are whole seconds).
    etag: str | None = None
    # Where an S3 object is read from (`s3_landing.S3Landing`); None for a local file.
    origin: Any = field(default=None, compare=False, repr=False)

    @property
    def identity(self) -> str:
        """Changes when the file is rewritten, so a rewritten file is ingested again."""
        return f"{self.relative_path}:{self.size}:{self.etag or self.mtime_ns}"

    @property
    def url(self) -> str:
        """What DuckDB reads: the local path or the s3:// URL."""
        return str(self.path)

    def open(self) -> BinaryIO:
        """The file's bytes, for the checks that read them beside DuckDB's parse."""
        return self.origin.open(self) if self.origin is not None else open(self.path, "rb")

    def prepare(self, con) -> None:
        """Make `con` (a DuckDB connection) able to read `url`: S3 credentials, for an object."""
        if self.origin is not None:
            self.origin.attach(con)


def _is_visible(path: Path) -> bool:
    return path.is_file() and not path.name.startswith((".", "_"))


def refusal(path: Path, landing_root: Path) -> str | None:
    """Why a landed path is not read, or None: symbolic links anywhere below the root, and
    anything that resolves outside it, are refused."""
    root = landing_root.resolve()
    relative = path.relative_to(landing_root)
    for depth in range(1, len(relative.parts) + 1):
        if (landing_root / Path(*relative.parts[:depth])).is_symlink():
            linked = Path(*relative.parts[:depth]).as_posix()
            return f"{linked} is a symbolic link: links are never followed (land the file itself)"
    if not path.resolve().is_relative_to(root):
        return "resolves outside the landing root"
    return None


def parse_landing_date(folder_name: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(folder_name)
    except ValueError:
        return None


def date_folders(
    landing_root: Path, source: str, dates: tuple[dt.date, dt.date] | None = None
) -> list[tuple[dt.date, str]]:
    """The source's date folders (date, path), in date order; `dates` limits to a landing-date
    range. One directory read, and a stat only of folders in the range, so it costs the same
    however many files the folders hold; paths stay strings, as a tick reads every folder."""
    try:
        entries = list(os.scandir(landing_root / source))
    except (FileNotFoundError, NotADirectoryError):
        return []
    folders = []
    for entry in entries:
        day = parse_landing_date(entry.name)
        if day and (dates is None or dates[0] <= day <= dates[1]) and entry.is_dir():
            folders.append((day, entry.path))
    return sorted(folders)


def landed_files(
    landing_root: Path,
    source: str,
    formats: tuple[str, ...],
    dates: tuple[dt.date, dt.date] | None = None,
    folders: list[tuple[dt.date, str]] | None = None,
) -> list[LandedFile]:
    """Files of `source` in landing order (date, name); `dates` limits to a landing-date range,
    `folders` (from `date_folders`) to chosen date folders."""
    if folders is None:
        folders = date_folders(landing_root, source, dates)
    return [f for day, folder in folders for f in _landed_in(landing_root, day, Path(folder), formats)]


def _landed_in(landing_root: Path, day: dt.date, folder: Path, formats: tuple[str, ...]) -> list[LandedFile]:
    # `refusal` once for the folder (source folder or date folder a link, or outside the root):
    # then a file is refused only when it is a link itself, which its directory entry tells
    # without a system call. One stat per file and no path parsing: a tick lists the recent
    # folders every time.
    if refusal(folder, landing_root) is not None:
        return []
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):  # moved away since the folder was listed
        return []
    under_root = folder.relative_to(landing_root).as_posix()
    found = []
    for entry in entries:
        fmt = file_format(entry.name)
        if fmt not in formats or entry.name.startswith((".", "_")) or entry.is_symlink():
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            stat = entry.stat(follow_symlinks=False)
        except FileNotFoundError:  # moved away between listing and now: not landed
            continue
        found.append(
            LandedFile(
                folder / entry.name,
                f"{under_root}/{entry.name}",
                day,
                fmt,
                stat.st_size,
                stat.st_mtime_ns,
                max(stat.st_mtime_ns, stat.st_ctime_ns),
            )
        )
    return found


def unsupported_files(
    landing_root: Path, source: str, formats: tuple[str, ...], dates: tuple[dt.date, dt.date] | None = None
) -> list[Path]:
    """Visible files the source cannot read (wrong format, or outside a date folder): reported, never
    silently skipped. `dates` limits to the date folders of a landing-date range, plus everything
    outside any date folder (which belongs to no date, so to every run)."""
    source_dir = landing_root / source
    if not source_dir.is_dir():
        return []
    if dates is None:
        candidates: Iterable[Path] = source_dir.rglob("*")
    else:
        candidates = _outside_other_dates(source_dir, dates)
    return sorted(
        p
        for p in candidates
        if _is_visible(p)
        and not any(part.startswith((".", "_")) for part in p.relative_to(source_dir).parts)
        and (
            file_format(p.name) not in formats
            or parse_landing_date(p.parent.name) is None
            or p.parent.parent != source_dir
        )
    )


def _outside_other_dates(source_dir: Path, dates: tuple[dt.date, dt.date]) -> Iterator[Path]:
    """What `rglob("*")` yields, less the date folders outside `dates` and what they hold."""
    for top in source_dir.iterdir():
        day = parse_landing_date(top.name)
        if day and not dates[0] <= day <= dates[1] and top.is_dir():
            continue
        yield top
        if top.is_dir() and not top.is_symlink():  # rglob does not descend into links either
            yield from top.rglob("*")


def refused_files(landing_root: Path, source: str, dates: tuple[dt.date, dt.date] | None = None) -> dict[str, str]:
    """Visible entries of the source's date folders (of a landing-date range, with `dates`) that
    are not read, by path under the landing root, with the reason (see `refusal`)."""
    source_dir = landing_root / source
    if not source_dir.is_dir():
        return {}
    refused = {}
    for folder in sorted(source_dir.iterdir()):
        day = None if folder.name.startswith((".", "_")) else parse_landing_date(folder.name)
        if day is None or (dates is not None and not dates[0] <= day <= dates[1]):
            continue
        entries = [folder] if folder.is_symlink() else sorted(folder.iterdir()) if folder.is_dir() else []
        for path in entries:
            reason = None if path.name.startswith((".", "_")) else refusal(path, landing_root)
            if reason:
                refused[path.relative_to(landing_root).as_posix()] = reason
    return refused
