"""Housekeeping of the lake tables: snapshots older than the retention expired, and files no
metadata reaches any more removed.

A table keeps every snapshot (each one readable: a training set's manifest names the snapshots it
read) until housekeeping expires those older than the retention the user sets. Snapshots a tag
names are kept whatever their age (Iceberg's own rule; a training set tags what it read,
`tag_snapshot`). pyiceberg 0.12 expires snapshots in the metadata but deletes no file
(apache/iceberg-python#2604) and has no orphan-file removal (#1200), so the sweep is here:
reachable are the current metadata file and its log, every kept snapshot's manifest list, every
manifest and every data file they list; a file under the table's location that none of them names
and that is older than the retention goes. That covers superseded days, expired snapshots'
manifests and a killed writer's files, and never a running write's (its files are new).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyarrow import fs as pafs
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.io.pyarrow import PyArrowFileIO
from pyiceberg.table import Table

from ml_platform import settings
from ml_platform.lakehouse.catalog import NAMESPACE, catalog, identifier

# Attempts at the expiry commit when writers keep committing to the table meanwhile.
EXPIRE_ATTEMPTS = 10


@dataclass(frozen=True)
class Housekeeping:
    """What housekeeping did to one table."""

    table: str
    snapshots_expired: int
    snapshots_kept: int
    files_removed: int
    bytes_removed: int


def lake_tables() -> list[str]:
    """Every table of the platform's namespace in the catalog."""
    return sorted(name for _, name in catalog().list_tables(NAMESPACE))


def tag_snapshot(name: str, snapshot_id: int, tag: str) -> None:
    """Name `snapshot_id` of table `name` with `tag`, so housekeeping keeps it (a tag that exists
    already is moved to it)."""
    for _ in range(EXPIRE_ATTEMPTS):
        table = catalog().load_table(identifier(name))
        try:
            with table.manage_snapshots() as refs:
                if tag in table.metadata.refs:
                    refs.remove_tag(tag)
                refs.create_tag(snapshot_id, tag)
            return
        except CommitFailedException:
            continue
    raise CommitFailedException(f"{name}: could not tag snapshot {snapshot_id} as {tag!r}: the table kept changing")


def clean_up(name: str, retention: dt.timedelta, now: dt.datetime | None = None) -> Housekeeping:
    """Expire table `name`'s snapshots older than `retention`, and those beyond the newest
    `ML_PLATFORM_LAKE_MAX_SNAPSHOTS` (never the current one nor a tagged one), then remove its files
    that no metadata reaches and that are older than `retention`."""
    cutoff = (now or dt.datetime.now(dt.UTC)) - retention
    expired = _expire(name, settings.lake_max_snapshots(), cutoff)
    table = catalog().load_table(identifier(name))
    removed, removed_bytes = _remove_unreachable_files(table, cutoff)
    return Housekeeping(name, expired, len(table.snapshots()), removed, removed_bytes)


def trim_snapshots(name: str, keep: int) -> int:
    """Expire table `name`'s snapshots beyond its newest `keep` (never the current one nor a tagged
    one), whatever their age; returns how many. Its writers call it when a table they commit to
    often holds many more: pyiceberg copies the whole metadata, every snapshot in it, several times
    per commit, so a commit's cost grows with the snapshots kept (docs/scaling.md)."""
    return _expire(name, keep, None)


def _expire(name: str, keep: int, cutoff: dt.datetime | None) -> int:
    for _ in range(EXPIRE_ATTEMPTS):
        table = catalog().load_table(identifier(name))
        current = table.current_snapshot()
        newest_first = sorted(table.snapshots(), key=lambda s: (s.timestamp_ms, s.sequence_number), reverse=True)
        doomed = [
            s.snapshot_id
            for position, s in enumerate(newest_first)
            if (position >= keep or (cutoff is not None and s.timestamp_ms < cutoff.timestamp() * 1000))
            and (current is None or s.snapshot_id != current.snapshot_id)
        ]
        protected = {ref.snapshot_id for ref in table.metadata.refs.values()}
        doomed = [snapshot_id for snapshot_id in doomed if snapshot_id not in protected]
        if not doomed:
            return 0
        try:
            table.maintenance.expire_snapshots().by_ids(doomed).commit()
            return len(doomed)
        except CommitFailedException:
            continue  # a writer committed meanwhile: look at the new head
    return 0


def _reachable(table: Table) -> set[str]:
    reachable = {table.metadata_location, *(entry.metadata_file for entry in table.metadata.metadata_log)}
    reachable |= {snapshot.manifest_list for snapshot in table.snapshots()}
    reachable |= set(table.inspect.all_manifests()["path"].to_pylist())
    reachable |= set(table.inspect.all_files()["file_path"].to_pylist())
    return {_path(url) for url in reachable}


def _path(url: str) -> str:
    """A file's path as the file system lists it: without `file://`, and `bucket/key` on S3."""
    for scheme in ("file://", "s3://", "s3a://"):
        if url.startswith(scheme):
            return url[len(scheme) :]
    return url


def _remove_unreachable_files(table: Table, cutoff: dt.datetime) -> tuple[int, int]:
    io = PyArrowFileIO(properties=table.io.properties)
    scheme, netloc, root = PyArrowFileIO.parse_location(table.location())
    filesystem = io.fs_by_scheme(scheme, netloc)
    listed = filesystem.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    reachable = _reachable(table)
    doomed = [
        info
        for info in listed
        if info.type == pafs.FileType.File
        and info.path not in reachable
        and info.mtime is not None
        # A file newer than the cutoff may be a running writer's, about to be committed.
        and info.mtime.replace(tzinfo=info.mtime.tzinfo or dt.UTC) < cutoff
    ]
    for info in doomed:
        filesystem.delete_file(info.path)
    return len(doomed), sum(info.size or 0 for info in doomed)
