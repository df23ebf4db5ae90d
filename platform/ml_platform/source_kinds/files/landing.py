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
from dataclasses import dataclass
from pathlib import Path

FORMAT_BY_SUFFIX = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet"}


@dataclass(frozen=True)
class LandedFile:
    path: Path
    relative_path: str  # posix path under the landing root: the file's name in lineage
    landing_date: dt.date
    format: str
    size: int
    mtime_ns: int
    # When the file arrived here: a rename, `cp -p` or `rsync -a` keeps an old mtime but sets
    # ctime to now, so the later of the two is when the platform could first have seen it.
    arrived_ns: int

    @property
    def identity(self) -> str:
        """Changes when the file is rewritten, so a rewritten file is ingested again."""
        return f"{self.relative_path}:{self.size}:{self.mtime_ns}"


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


def landed_files(
    landing_root: Path, source: str, formats: tuple[str, ...], dates: tuple[dt.date, dt.date] | None = None
) -> list[LandedFile]:
    """Files of `source` in landing order (date, name); `dates` limits to a landing-date range."""
    source_dir = landing_root / source
    if not source_dir.is_dir():
        return []
    found: list[LandedFile] = []
    folders = []
    for folder in source_dir.iterdir():
        day = parse_landing_date(folder.name) if folder.is_dir() else None
        if day and (dates is None or dates[0] <= day <= dates[1]):
            folders.append((day, folder))
    for day, folder in sorted(folders):
        for path in sorted(folder.iterdir()):
            fmt = FORMAT_BY_SUFFIX.get(path.suffix.lower())
            if fmt in formats and _is_visible(path) and refusal(path, landing_root) is None:
                try:
                    stat = path.stat()
                except FileNotFoundError:  # moved away between listing and now: not landed
                    continue
                found.append(
                    LandedFile(
                        path,
                        path.relative_to(landing_root).as_posix(),
                        day,
                        fmt,
                        stat.st_size,
                        stat.st_mtime_ns,
                        max(stat.st_mtime_ns, stat.st_ctime_ns),
                    )
                )
    return found


def unsupported_files(landing_root: Path, source: str, formats: tuple[str, ...]) -> list[Path]:
    """Visible files the source cannot read (wrong format, or outside a date folder): reported, never
    silently skipped."""
    source_dir = landing_root / source
    if not source_dir.is_dir():
        return []
    return sorted(
        p
        for p in source_dir.rglob("*")
        if _is_visible(p)
        and not any(part.startswith((".", "_")) for part in p.relative_to(source_dir).parts)
        and (
            FORMAT_BY_SUFFIX.get(p.suffix.lower()) not in formats
            or parse_landing_date(p.parent.name) is None
            or p.parent.parent != source_dir
        )
    )


def refused_files(landing_root: Path, source: str) -> dict[str, str]:
    """Visible entries of the source's date folders that are not read, by path under the landing
    root, with the reason (see `refusal`)."""
    source_dir = landing_root / source
    if not source_dir.is_dir():
        return {}
    refused = {}
    for folder in sorted(source_dir.iterdir()):
        if folder.name.startswith((".", "_")) or parse_landing_date(folder.name) is None:
            continue
        entries = [folder] if folder.is_symlink() else sorted(folder.iterdir()) if folder.is_dir() else []
        for path in entries:
            reason = None if path.name.startswith((".", "_")) else refusal(path, landing_root)
            if reason:
                refused[path.relative_to(landing_root).as_posix()] = reason
    return refused
