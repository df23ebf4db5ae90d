"""Has each source stopped landing? The raw asset's `landing_freshness` check and the sensor
that keeps it current without a run.

The newest landing of a source is, for a file source, the newest file in its landing folder
(whether or not a run has ingested it yet: the check is about the producer); for a database or
API source, whose data exists for the platform only once extracted, the newest materialization
of its raw asset. Its age is judged against the source's `FreshnessRule`
(`ml_platform.quality.freshness`).

The check is an ordinary `@dg.asset_check` on the raw asset, so the UI lists it there and it can
be run on its own ("Execute"), or with a raw run launched by hand. The runs a source's trigger
launches leave it out (`ingestion.raw_asset.own_checks` says why): `landing_freshness_sensor`
keeps it current. On each tick it evaluates every source and reports the evaluation without a
run (the sensor daemon records `SensorResult.asset_events` as runless check evaluations). It
reports a source only when its verdict or its newest landing differs from the latest recorded
evaluation (run or sensor), read back from the instance: the event log gets one entry per
landing and one per threshold crossed, not one per tick, and a daemon restart loses nothing (there
is no cursor to lose). A source that has never landed gets no verdict, as Dagster's own freshness
state stays UNKNOWN before a first materialization.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import dagster as dg

from ml_platform.ingestion.spec import SourceSpec
from ml_platform.quality.freshness import (
    LANDING_FRESHNESS_CHECK,
    Landing,
    judge_landing,
    nothing_landed,
    same_verdict,
)
from ml_platform.results import Verdict
from ml_platform.source_kinds.files import FileSourceSpec
from ml_platform.source_kinds.files.landing_store import landing_store

SENSOR_NAME = "landing_freshness_sensor"
# Thresholds are hours (Dagster's own freshness daemon looks every 30 s too); a tick reads the
# newest date folder of each file source and one record per source.
TICK_SECONDS = 30


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def newest_landed_file(spec: FileSourceSpec) -> Landing | None:
    """The newest readable file of the newest date folder that holds one.

    The date folder is the landing day (UTC) by the layout's contract, so new data lands in the
    newest folders; only those are listed, newest first, so a tick's cost does not grow with the
    landing history. Within a folder the newest is the latest arrival (the later of mtime and
    ctime, as for the landing sensor: a file moved in with an old mtime arrived now).
    """
    store = landing_store()
    for day, folder in reversed(store.date_folders(spec.landing_folder)):
        files = store.landed_files(spec.landing_folder, spec.formats, folders=[(day, folder)])
        if files:
            newest = max(files, key=lambda f: (f.arrived_ns, f.relative_path))
            return Landing(
                f"file landing/{newest.relative_path}", dt.datetime.fromtimestamp(newest.arrived_ns / 1e9, dt.UTC)
            )
    return None


def newest_raw_materialization(spec: SourceSpec, instance: dg.DagsterInstance) -> Landing | None:
    """The latest materialization of the source's raw asset: the last extraction that ran."""
    entry = instance.get_latest_materialization_event(dg.AssetKey(spec.raw_table))
    if entry is None:
        return None
    partition = entry.dagster_event.partition if entry.dagster_event else None
    what = f"{spec.raw_table}" + (f" partition {partition}" if partition else "") + f" (run {entry.run_id[:8]})"
    return Landing(what, dt.datetime.fromtimestamp(entry.timestamp, dt.UTC))


def newest_landing(spec: SourceSpec, instance: dg.DagsterInstance) -> Landing | None:
    if isinstance(spec, FileSourceSpec):
        return newest_landed_file(spec)
    return newest_raw_materialization(spec, instance)


def landing_verdict(spec: SourceSpec, instance: dg.DagsterInstance, now: dt.datetime) -> Verdict | None:
    """The check's verdict now; None when nothing has landed yet."""
    landing = newest_landing(spec, instance)
    return None if landing is None else judge_landing(spec.name, landing, spec.freshness, now)


def _where(spec: SourceSpec) -> str:
    return f"landing/{spec.landing_folder}/" if isinstance(spec, FileSourceSpec) else spec.raw_table


def check_key(spec: SourceSpec) -> dg.AssetCheckKey:
    return dg.AssetCheckKey(dg.AssetKey(spec.raw_table), LANDING_FRESHNESS_CHECK)


def landing_freshness_check(spec: SourceSpec) -> dg.AssetChecksDefinition:
    """The raw asset's `landing_freshness` check, evaluated when run (alone or with the raw asset)."""

    @dg.asset_check(
        asset=dg.AssetKey(spec.raw_table),
        name=LANDING_FRESHNESS_CHECK,
        description=(
            f"Time since data last landed in {_where(spec)}: {spec.freshness.describe()}. "
            f"Kept current between runs by {SENSOR_NAME}."
        ),
    )
    # Unannotated: Dagster inspects the annotation, which `from __future__ import annotations` makes a string.
    def _check(context):
        verdict = landing_verdict(spec, context.instance, utc_now()) or nothing_landed(spec.name, _where(spec))
        return dg.AssetCheckResult(
            passed=verdict.passed,
            severity=verdict.severity,
            metadata=verdict.metadata,
            description=verdict.description,
        )

    return _check


def _recorded(instance: dg.DagsterInstance, key: dg.AssetCheckKey) -> tuple[bool, dg.AssetCheckEvaluation | None]:
    """(whether a run is evaluating the check right now, the latest recorded evaluation)."""
    record = instance.get_latest_asset_check_evaluation_record(key)
    if record is None or record.event is None or record.event.dagster_event is None:
        return False, None
    data = record.event.dagster_event.event_specific_data
    if isinstance(data, dg.AssetCheckEvaluation):
        return False, data
    return True, None  # planned: the run will record its own evaluation


def landing_freshness_sensor(
    specs: Sequence[SourceSpec], clock: Callable[[], dt.datetime] = utc_now
) -> dg.SensorDefinition:
    """Evaluates every source's `landing_freshness` on each tick and reports what changed (see the
    module docstring). `clock` gives the current UTC time (tests move it)."""

    @dg.sensor(
        name=SENSOR_NAME,
        description=(
            "Reports each source's landing_freshness check (WARN, then ERROR, when a source stops landing) "
            "without a run, when its verdict or newest landing changes."
        ),
        minimum_interval_seconds=TICK_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def _sensor(context: dg.SensorEvaluationContext):
        now = clock()
        events, quiet = [], []
        for spec in specs:
            verdict = landing_verdict(spec, context.instance, now)
            running, previous = _recorded(context.instance, check_key(spec))
            if verdict is None or running or same_verdict(verdict, previous):
                quiet.append(spec.name)
                continue
            events.append(
                dg.AssetCheckEvaluation(
                    asset_key=dg.AssetKey(spec.raw_table),
                    check_name=LANDING_FRESHNESS_CHECK,
                    passed=verdict.passed,
                    severity=verdict.severity,
                    metadata=verdict.metadata,
                    description=verdict.description,
                )
            )
        if not events:
            return dg.SkipReason(f"landing freshness unchanged for {', '.join(quiet)}")
        return dg.SensorResult(asset_events=events)

    return _sensor
