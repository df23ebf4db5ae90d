"""The lag sensor of a Kafka source: requests a raw run of today when the topic has messages raw
has not read, and records the lag.

Each tick asks the broker for every partition's high watermark and compares it with the offsets
raw has stored, as the latest raw materialization reports them (`stream_offsets` metadata, written
in the run's transaction with the rows). The sensor never opens the warehouse (a run holding its
write lock would stall it) and never commits anything to Kafka: the run reads the offsets from the
warehouse itself, so a stale report only costs a run that finds less to read.

- Run key: `<source>:<day>:<topic>:<partition>=<from>-<to>,...`, the per-partition offset
  ranges the lag covers, so a repeated tick never requests the same range twice. While a run of
  the source is queued or running, no other is requested (it takes all the lag there is when it
  starts). When the latest run failed on the same ranges (the broker was away), they are
  requested once more (`:retry-<run id>`); when that retry fails too, the sensor stops asking for
  those ranges and says which run failed (new messages make new ranges, and a new request).
- Lag: `lag/partition_<n>` (high watermark minus stored offset) and `lag/total` on an
  `AssetObservation` of the raw asset for today's partition, numeric metadata the UI plots
  (asset page, Plots) and the metrics endpoint serves (`monitoring/metrics.py`). One is recorded
  when the lag changed, and at least once a minute while the broker answers, so its age says
  how current it is.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import time

import dagster as dg

from ml_platform import settings
from ml_platform.ingestion.kafka.client import KafkaSourceError, topic_reader
from ml_platform.ingestion.kafka.spec import KafkaSourceSpec
from ml_platform.ingestion.raw_asset import own_checks
from ml_platform.raw.stream import MICRO_BATCH_TAG

# The raw materialization's metadata entry holding the offsets stored by its run.
OFFSETS_METADATA = "stream_offsets"
LAG_PREFIX = "lag/"
SOURCE_TAG = "ml_platform/stream_source"
RANGES_TAG = "ml_platform/stream_ranges"
RETRY_TAG = "ml_platform/stream_retry_of"
# A tick waits at most this long for the broker: a sensor that blocks delays the daemon's others.
TICK_TIMEOUT_SECONDS = 2.0
HEARTBEAT_SECONDS = 60.0
# The sensor's cursor entry: since when messages have been waiting for a run (`_still_gathering`).
WAITING_SINCE = "waiting_since"
IN_FLIGHT = (
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
)
ENDED_BADLY = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


def stored_offsets(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict[int, int]:
    """Partition -> next offset, as the latest raw materialization recorded (empty before any)."""
    event = instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        return {}
    entry = event.asset_materialization.metadata.get(OFFSETS_METADATA)
    return {int(p): int(o) for p, o in (entry.value if entry is not None else {}).items()}


def ranges_label(ranges: dict[int, tuple[int, int]]) -> str:
    """`0=100-249,3=0-16`: each partition's offsets to read (inclusive), for run keys and tags."""
    return ",".join(f"{p}={first}-{end - 1}" for p, (first, end) in sorted(ranges.items()))


def micro_batch_selection(spec: KafkaSourceSpec, raw: dg.AssetsDefinition) -> dg.AssetSelection:
    """The raw asset and the assets brought up to date in its runs (stream feature views: tagged
    `MICRO_BATCH_TAG` with the source's name), resolved when a tick requests a run."""
    followers = dg.AssetSelection.assets(raw.key).downstream(depth=1, include_self=False) & dg.AssetSelection.tag(
        MICRO_BATCH_TAG, spec.name
    )
    return dg.AssetSelection.assets(raw.key) | followers


def lag_sensor(spec: KafkaSourceSpec, raw: dg.AssetsDefinition) -> dg.SensorDefinition:
    partitions_def = raw.partitions_def
    quick = dataclasses.replace(spec, request_timeout_seconds=min(spec.request_timeout_seconds, TICK_TIMEOUT_SECONDS))

    @dg.sensor(
        name=f"{spec.name}_lag_sensor",
        description=(
            f"Requests {raw.key.to_user_string()} runs while topic {spec.topic} holds messages raw has not read;"
            f" records the lag per partition. Needs {spec.bootstrap_servers_env}."
        ),
        asset_selection=micro_batch_selection(spec, raw),
        minimum_interval_seconds=settings.sensor_interval_seconds(),
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def _sensor(context: dg.SensorEvaluationContext):
        bootstrap = os.environ.get(spec.bootstrap_servers_env)
        if not bootstrap:
            return dg.SkipReason(
                f"{spec.name}: Kafka source not configured: environment variable {spec.bootstrap_servers_env} not set"
                " (`make dev` sets it when it starts the broker; docs/streaming.md)"
            )
        try:
            with topic_reader(bootstrap, quick) as reader:
                watermarks = reader.watermarks(reader.partitions())
        except KafkaSourceError as exc:
            return dg.SkipReason(str(exc))
        cursor = json.loads(context.cursor) if context.cursor else {}
        stored = stored_offsets(context.instance, raw.key)
        today = dt.datetime.now(dt.UTC).date().isoformat()
        lag = {p: high - stored.get(p, 0) for p, (_, high) in watermarks.items()}
        events, cursor = _observation(raw.key, today, lag, cursor)
        ranges = {p: (stored.get(p, 0), high) for p, (_, high) in watermarks.items() if high > stored.get(p, 0)}
        if not ranges:
            cursor.pop(WAITING_SINCE, None)
        new_cursor = json.dumps(cursor, sort_keys=True)
        [latest] = context.instance.get_runs(dg.RunsFilter(tags={SOURCE_TAG: spec.name}), limit=1) or [None]
        if not ranges and not _steps_after_raw_failed(latest):
            return dg.SensorResult(
                skip_reason=f"{spec.name}: no lag on {spec.topic}", asset_events=events, cursor=new_cursor
            )
        if not partitions_def.has_partition_key(today):
            return dg.SensorResult(
                skip_reason=f"{spec.name}: today ({today}) is not a partition of {raw.key.to_user_string()}",
                asset_events=events,
                cursor=new_cursor,
            )
        label = ranges_label(ranges)
        if latest is not None and latest.status in IN_FLIGHT:
            return dg.SensorResult(
                skip_reason=f"{spec.name}: run {latest.run_id[:8]} is {latest.status.value.lower()}; it reads the lag",
                asset_events=events,
                cursor=new_cursor,
            )
        if ranges and not (latest is not None and latest.status in ENDED_BADLY):
            waiting = _still_gathering(spec, sum(lag.values()), cursor)
            if waiting:
                return dg.SensorResult(
                    skip_reason=waiting, asset_events=events, cursor=json.dumps(cursor, sort_keys=True)
                )
        cursor.pop(WAITING_SINCE, None)
        new_cursor = json.dumps(cursor, sort_keys=True)
        key = f"{spec.name}:{today}:{spec.topic}:{label}"
        tags = {"ml_platform/source": spec.name, SOURCE_TAG: spec.name, RANGES_TAG: label}
        if latest is not None and latest.status in ENDED_BADLY and (not ranges or latest.tags.get(RANGES_TAG) == label):
            if RETRY_TAG in latest.tags and latest.tags.get(RANGES_TAG) == label:
                return dg.SensorResult(
                    skip_reason=(
                        f"{spec.name}: the runs of offsets {label or '(none: their micro-batch steps)'} failed twice"
                        f" (last: run {latest.run_id[:8]}); not requested again until new messages arrive or a run"
                        " is launched by hand"
                    ),
                    asset_events=events,
                    cursor=new_cursor,
                )
            key += f":retry-{latest.run_id[:8]}" if ranges else f"after-{latest.run_id[:8]}"
            tags[RETRY_TAG] = latest.run_id
        graph = context.repository_def.asset_graph
        selected = micro_batch_selection(spec, raw).resolve(graph)
        request = dg.RunRequest(
            run_key=key,
            partition_key=today,
            tags=tags,
            asset_selection=sorted(selected),
            # The raw asset's own checks, and every check of the assets brought up to date with it.
            asset_check_keys=[*own_checks(raw), *sorted(graph.get_check_keys_for_assets(selected - {raw.key}))],
        )
        return dg.SensorResult(run_requests=[request], asset_events=events, cursor=new_cursor)

    return _sensor


def _steps_after_raw_failed(latest: dg.DagsterRun | None) -> bool:
    """The latest run ended badly: with no lag, its raw step committed and a step after it (a
    stream feature view: the online store was away) did not; a run reading no messages applies
    what the views have not (each applies every batch it has not, `curated/stream_update.py`)."""
    return latest is not None and latest.status in ENDED_BADLY


def _still_gathering(spec: KafkaSourceSpec, waiting: int, cursor: dict) -> str | None:
    """Why no run is requested yet, or None: a micro-batch starts once `micro_batch_messages` are
    waiting or the first of them has waited `micro_batch_wait_seconds` (as Kafka Connect flushes on
    a size or a time). A trickle then costs a run every half minute, not one per tick, each holding
    the warehouse's one writer. Records in `cursor` since when messages wait."""
    now = time.time()
    since = cursor.setdefault(WAITING_SINCE, now)
    if waiting >= spec.micro_batch_messages or now - since >= spec.micro_batch_wait_seconds:
        return None
    return (
        f"{spec.name}: {waiting} message(s) waiting for {now - since:.0f} s; a run starts at"
        f" {spec.micro_batch_messages} or after {spec.micro_batch_wait_seconds:.0f} s"
    )


def _observation(key: dg.AssetKey, today: str, lag: dict[int, int], cursor: dict) -> tuple[list, dict]:
    """The lag observation when the lag changed or the last one is a minute old; the new cursor."""
    now = time.time()
    figures = {str(p): n for p, n in sorted(lag.items())}
    if figures == cursor.get("lag") and now - cursor.get("at", 0) < HEARTBEAT_SECONDS:
        return [], cursor
    metadata = {f"{LAG_PREFIX}partition_{p}": n for p, n in figures.items()}
    metadata[f"{LAG_PREFIX}total"] = sum(lag.values())
    return [dg.AssetObservation(asset_key=key, partition=today, metadata=metadata)], {
        **cursor,
        "lag": figures,
        "at": now,
    }
