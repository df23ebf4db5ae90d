"""Landing sensors: a new or rewritten file requests its raw partition, once.

The cursor keeps the newest arrival time seen (the later of mtime and ctime, so files moved or
copied in with an old mtime still count as new) plus the identities of files at the edge of
that window: a file arriving in the same instant as the cursor (coarse filesystem clocks) is
still picked up, and one already requested is not requested again. All files of one landing
date seen in a tick make one run, whose run_key is derived from their identities (path,
size, mtime), so a file never triggers twice and a rewritten file triggers again.

A tick costs the same whatever the history: it reads the source folder (one entry per date
folder), stats each date folder, and lists the files of only
- the folders that changed since the previous tick: a directory's mtime and ctime move when an
  entry is created, renamed, moved in or removed in it, so a file landing in an old date folder
  (late data), moved or copied in with an old mtime, or rewritten by writing a temporary name
  and renaming it over the old one, is seen in any folder, however old;
- the `RECENT_FOLDERS` newest date folders, always: a file rewritten *in place* (truncated and
  written again, appended to, `cp` over it, `touch`) changes the file but not its folder;
- the folders of files waiting for their partition;
- date folders the previous tick did not see, whose files are all new whatever their times: a
  whole folder landed by renaming (`mv _2026-11-05 2026-11-05`) keeps its files' old ctimes.
Not seen: an in-place rewrite of a file in an older folder. To have it ingested again, land the
new version by rename (or `touch` its date folder, which makes the next tick list it); or run the
day's raw partition.
On S3 (`ML_PLATFORM_STORAGE`) there are no folder times: a tick lists the source's prefix
(1,000 keys per request), an object's identity is its key, size and ETag, and its arrival its
LastModified, whole seconds, and for a multipart upload the time the upload started. The edge
window is therefore `ML_PLATFORM_S3_LISTING_OVERLAP` (15 min) instead of 2 s: an object up to
that much older than the newest seen is still picked up, and one already requested is not
requested again.
"Changed since" is measured against the earlier of the cursor's arrival time and the previous
tick's start (`checked_ns`), minus the clock-skew window: a folder changed while that tick ran is
listed again by the next one. The cursor stays small: no per-folder times, and the folders seen
as runs of consecutive dates (`folders`: a year of daily folders is one `first..last`).
"""

import datetime as dt
import hashlib
import json
import os
import time
from collections import defaultdict

import dagster as dg

from ml_platform import settings
from ml_platform.ingestion.files.landing import LandedFile
from ml_platform.ingestion.files.landing_store import LocalLanding, landing_store
from ml_platform.ingestion.files.s3_landing import S3Landing
from ml_platform.ingestion.files.spec import FileSourceSpec

# Files modified this close to the cursor are re-listed, then filtered by identity.
EDGE_NS = 2_000_000_000
# Date folders always listed, newest first by name (today's and the two before): where files are
# still being written, so where an in-place rewrite is likely and must still be seen.
RECENT_FOLDERS = 3


def _changed_ns(folder: str) -> int:
    """When an entry of the folder was last created, renamed or removed (or the folder moved)."""
    try:
        stat = os.stat(folder)
    except FileNotFoundError:  # removed since the source folder was read: nothing to list
        return -1
    return max(stat.st_mtime_ns, stat.st_ctime_ns)


def _folders_to_list(
    folders: list[tuple[dt.date, str]], cursor: dict, waiting: set[str], new_days: set[str]
) -> list[tuple[dt.date, str]]:
    """The date folders this tick lists (see the module docstring); all of them on a first tick."""
    if "arrived_ns" not in cursor:
        return folders
    arrived = cursor["arrived_ns"]
    since = min(arrived, cursor.get("checked_ns", arrived)) - EDGE_NS
    always = new_days | {day.isoformat() for day, _ in folders[-RECENT_FOLDERS:]}
    always |= {identity.split("/", 2)[1] for identity in waiting}  # `<source>/<date>/<name>:<size>:<mtime>`
    return [(day, f) for day, f in folders if day.isoformat() in always or _changed_ns(f) >= since]


def _as_ranges(days: list[dt.date]) -> list[str]:
    """Sorted dates as runs of consecutive days, `first..last`: a year of daily folders is one."""
    ranges: list[list[dt.date]] = []
    for day in days:
        if ranges and day - ranges[-1][1] == dt.timedelta(days=1):
            ranges[-1][1] = day
        else:
            ranges.append([day, day])
    return [f"{first}..{last}" for first, last in ranges]


def _in_ranges(ranges: list[str]) -> set[str]:
    days = set()
    for text in ranges:
        first, last = (dt.date.fromisoformat(part) for part in text.split(".."))
        days |= {(first + dt.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)}
    return days


def _run_key(spec: FileSourceSpec, partition: str, identities: list[str]) -> str:
    digest = hashlib.sha256("\n".join(sorted(identities)).encode()).hexdigest()[:20]
    return f"{spec.name}:{partition}:{digest}"


def _local_listing(
    store: LocalLanding, spec: FileSourceSpec, cursor: dict, waiting: set[str]
) -> tuple[list[LandedFile], set[str], list[str]]:
    """(files listed this tick, date folders new since the previous tick, the folders seen as
    ranges for the cursor): only the folders that may hold something new (module docstring)."""
    folders = store.date_folders(spec.landing_folder)
    # Date folders the previous tick did not see (a cursor from before they were kept: none):
    # all their files are new, whatever their times, e.g. a whole folder landed by renaming.
    seen = _in_ranges(cursor["folders"]) if "folders" in cursor else {day.isoformat() for day, _ in folders}
    new_days = {day.isoformat() for day, _ in folders} - seen
    listed = store.landed_files(
        spec.landing_folder, spec.formats, folders=_folders_to_list(folders, cursor, waiting, new_days)
    )
    return listed, new_days, _as_ranges([day for day, _ in folders])


def landing_sensor(
    spec: FileSourceSpec,
    raw_key: dg.AssetKey,
    partitions_def: dg.PartitionsDefinition,
    check_keys: list[dg.AssetCheckKey] | None = None,
) -> dg.SensorDefinition:
    """`check_keys`: the checks its runs execute (None: every check of the raw asset)."""

    @dg.sensor(
        name=f"{spec.name}_landing_sensor",
        description=(
            f"Requests {raw_key.to_user_string()} partitions when files land in landing/{spec.landing_folder}/"
            " (the local folder, or under the S3 prefix)."
        ),
        asset_selection=[raw_key],
        minimum_interval_seconds=settings.sensor_interval_seconds(),
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def _sensor(context: dg.SensorEvaluationContext):
        checked = time.time_ns()
        cursor = json.loads(context.cursor) if context.cursor else {}
        since, edge = cursor.get("arrived_ns", 0), dict(cursor.get("edge", {}))
        # Files whose landing date has no partition yet (e.g. tomorrow's, written early): kept
        # here until the partition exists, so they are requested then and never lost.
        waiting = set(cursor.get("waiting", []))
        store = landing_store()
        if isinstance(store, S3Landing):
            listed, new_days, folder_ranges = store.landed_files(spec.landing_folder, spec.formats), set(), None
            edge_ns = settings.s3_listing_overlap_seconds() * 1_000_000_000
        else:
            listed, new_days, folder_ranges = _local_listing(store, spec, cursor, waiting)
            edge_ns = EDGE_NS
        new = [
            f
            for f in listed
            if (f.arrived_ns >= since - edge_ns or f.landing_date.isoformat() in new_days) and f.identity not in edge
        ]
        candidates = new + [f for f in listed if f.identity in waiting and f not in new]
        if not candidates:
            return dg.SkipReason(f"no new files in landing/{spec.landing_folder}/")
        valid_keys = set(partitions_def.get_partition_keys(dynamic_partitions_store=context.instance))
        by_partition: dict[str, list[str]] = defaultdict(list)
        waiting = set()
        for f in candidates:
            key = f.landing_date.isoformat()
            if key in valid_keys:
                by_partition[key].append(f.identity)
                continue
            if f in new:
                context.log.warning(f"{f.relative_path}: no partition for landing date {key} yet; waiting")
            waiting.add(f.identity)
        high = max([since, *(f.arrived_ns for f in new)])
        edge.update({f.identity: f.arrived_ns for f in new})
        edge = {identity: arrived for identity, arrived in edge.items() if arrived >= high - edge_ns}
        runs = [
            dg.RunRequest(
                run_key=_run_key(spec, key, identities),
                partition_key=key,
                tags={"ml_platform/source": spec.name, "ml_platform/files": str(len(identities))},
                asset_check_keys=check_keys,
            )
            for key, identities in sorted(by_partition.items())
        ]
        cursor = {
            "arrived_ns": high,
            "checked_ns": checked,
            "edge": dict(sorted(edge.items())),
            "waiting": sorted(waiting),
        }
        if folder_ranges is not None:
            cursor["folders"] = folder_ranges
        if not runs:
            return dg.SensorResult(
                skip_reason=f"{len(waiting)} file(s) wait for their partition", cursor=json.dumps(cursor)
            )
        return dg.SensorResult(run_requests=runs, cursor=json.dumps(cursor))

    return _sensor
