"""Landing sensors: a new or rewritten file requests its raw partition, once.

The cursor keeps the newest arrival time seen (the later of mtime and ctime, so files moved or
copied in with an old mtime still count as new) plus the identities of files at the edge of
that window: a file arriving in the same instant as the cursor (coarse filesystem clocks) is
still picked up, and one already requested is not requested again. All files of one landing
date seen in a tick make one run, whose run_key is derived from their identities (path,
size, mtime), so a file never triggers twice and a rewritten file triggers again.
"""

import hashlib
import json
from collections import defaultdict

import dagster as dg

from ml_platform import settings
from ml_platform.source_kinds.files.landing import landed_files
from ml_platform.source_kinds.files.spec import FileSourceSpec

# Files modified this close to the cursor are re-listed, then filtered by identity.
EDGE_NS = 2_000_000_000


def _run_key(spec: FileSourceSpec, partition: str, identities: list[str]) -> str:
    digest = hashlib.sha256("\n".join(sorted(identities)).encode()).hexdigest()[:20]
    return f"{spec.name}:{partition}:{digest}"


def landing_sensor(
    spec: FileSourceSpec, raw_key: dg.AssetKey, partitions_def: dg.PartitionsDefinition
) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{spec.name}_landing_sensor",
        description=f"Requests {raw_key.to_user_string()} partitions when files land in landing/{spec.landing_folder}/.",
        asset_selection=[raw_key],
        minimum_interval_seconds=settings.sensor_interval_seconds(),
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def _sensor(context: dg.SensorEvaluationContext):
        cursor = json.loads(context.cursor) if context.cursor else {}
        since, edge = cursor.get("arrived_ns", 0), dict(cursor.get("edge", {}))
        # Files whose landing date has no partition yet (e.g. tomorrow's, written early): kept
        # here until the partition exists, so they are requested then and never lost.
        waiting = set(cursor.get("waiting", []))
        listed = landed_files(settings.landing_dir(), spec.landing_folder, spec.formats)
        new = [f for f in listed if f.arrived_ns >= since - EDGE_NS and f.identity not in edge]
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
        edge = {identity: arrived for identity, arrived in edge.items() if arrived >= high - EDGE_NS}
        runs = [
            dg.RunRequest(
                run_key=_run_key(spec, key, identities),
                partition_key=key,
                tags={"ml_platform/source": spec.name, "ml_platform/files": str(len(identities))},
            )
            for key, identities in sorted(by_partition.items())
        ]
        cursor = {"arrived_ns": high, "edge": dict(sorted(edge.items())), "waiting": sorted(waiting)}
        if not runs:
            return dg.SensorResult(
                skip_reason=f"{len(waiting)} file(s) wait for their partition", cursor=json.dumps(cursor)
            )
        return dg.SensorResult(run_requests=runs, cursor=json.dumps(cursor))

    return _sensor
