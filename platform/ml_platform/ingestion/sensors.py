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
from ml_platform.ingestion.landing import landed_files
from ml_platform.sources.spec import FileSourceSpec

# Files modified this close to the cursor are re-listed, then filtered by identity.
EDGE_NS = 2_000_000_000


def _run_key(spec: FileSourceSpec, partition: str | None, identities: list[str]) -> str:
    digest = hashlib.sha256("\n".join(sorted(identities)).encode()).hexdigest()[:20]
    return f"{spec.name}:{partition or 'snapshot'}:{digest}"


def landing_sensor(spec: FileSourceSpec, raw_key: dg.AssetKey, partitions_def=None) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{spec.name}_landing_sensor",
        description=f"Requests {raw_key.to_user_string()} partitions when files land in landing/{spec.landing_folder}/.",
        asset_selection=[raw_key],
        minimum_interval_seconds=settings.sensor_interval_seconds(),
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def _sensor(context: dg.SensorEvaluationContext):
        cursor = json.loads(context.cursor) if context.cursor else {"arrived_ns": 0, "edge": {}}
        since, edge = cursor["arrived_ns"], dict(cursor["edge"])
        new = [
            f for f in landed_files(settings.landing_dir(), spec.landing_folder, spec.formats)
            if f.arrived_ns >= since - EDGE_NS and f.identity not in edge
        ]
        if not new:
            return dg.SkipReason(f"no new files in landing/{spec.landing_folder}/")
        valid_keys = set(partitions_def.get_partition_keys(dynamic_partitions_store=context.instance)) if partitions_def else None
        by_partition: dict[str | None, list[str]] = defaultdict(list)
        for f in new:
            key = f.landing_date.isoformat()
            if valid_keys is not None and key not in valid_keys:
                context.log.warning(f"{f.relative_path}: landing date {key} is outside the partitions; not requested")
                continue
            by_partition[key].append(f.identity)
        high = max(since, max(f.arrived_ns for f in new))
        edge.update({f.identity: f.arrived_ns for f in new})
        edge = {identity: arrived for identity, arrived in edge.items() if arrived >= high - EDGE_NS}
        runs = [
            dg.RunRequest(
                run_key=_run_key(spec, key, identities),
                partition_key=key,
                tags={"ml_platform/source": spec.name, "ml_platform/files": str(len(identities))},
            )
            for key, identities in sorted(by_partition.items(), key=lambda kv: kv[0] or "")
        ]
        return dg.SensorResult(run_requests=runs, cursor=json.dumps({"arrived_ns": high, "edge": dict(sorted(edge.items()))}))

    return _sensor
