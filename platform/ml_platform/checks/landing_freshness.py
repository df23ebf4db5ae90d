"""Has each source stopped landing? The raw asset's `landing_freshness` check and the sensor
that keeps it current without a run.

The newest landing of a source is what its spec's `newest_landing` finds: for a file source, the
newest file in its landing folder (whether or not a run has ingested it yet: the check is about
the producer); for a database or API source, whose data exists for the platform only once
extracted, the newest materialization of its raw asset. Its age is judged against the source's `FreshnessRule`
(`ml_platform.contracts.freshness`).

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

from ml_platform.contracts.freshness import FreshnessRule, Landing, hours_text
from ml_platform.raw.spec import SourceSpec
from ml_platform.results import Verdict

LANDING_FRESHNESS_CHECK = "landing_freshness"

SENSOR_NAME = "landing_freshness_sensor"
# Thresholds are hours (Dagster's own freshness daemon looks every 30 s too); a tick reads the
# newest date folder of each file source and one record per source.
TICK_SECONDS = 30


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def landing_verdict(spec: SourceSpec, instance: dg.DagsterInstance, now: dt.datetime) -> Verdict | None:
    """The check's verdict now; None when nothing has landed yet."""
    landing = spec.newest_landing(instance)
    return None if landing is None else judge_landing(spec.name, landing, spec.freshness, now)


def check_key(spec: SourceSpec) -> dg.AssetCheckKey:
    return dg.AssetCheckKey(dg.AssetKey(spec.raw_table), LANDING_FRESHNESS_CHECK)


def landing_freshness_check(spec: SourceSpec) -> dg.AssetChecksDefinition:
    """The raw asset's `landing_freshness` check, evaluated when run (alone or with the raw asset)."""

    @dg.asset_check(
        asset=dg.AssetKey(spec.raw_table),
        name=LANDING_FRESHNESS_CHECK,
        description=(
            f"Time since data last landed in {spec.landing_place}: {spec.freshness.describe()}. "
            f"Kept current between runs by {SENSOR_NAME}."
        ),
    )
    # Unannotated: Dagster inspects the annotation, which `from __future__ import annotations` makes a string.
    def _check(context):
        verdict = landing_verdict(spec, context.instance, utc_now()) or nothing_landed(spec.name, spec.landing_place)
        return verdict.result()

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
            events.append(verdict.evaluation(dg.AssetKey(spec.raw_table), LANDING_FRESHNESS_CHECK))
        if not events:
            return dg.SkipReason(f"landing freshness unchanged for {', '.join(quiet)}")
        return dg.SensorResult(asset_events=events)

    return _sensor


def judge_landing(source: str, landing: Landing, rule: FreshnessRule, now: dt.datetime) -> Verdict:
    """The `landing_freshness` verdict: the lag since the newest landing against the rule.

    The metadata holds the lag and both thresholds in hours (numbers the UI plots), the landing
    time and what landed; the description says it in words.
    """
    # A clock behind the file's (another machine's) must not give a negative lag.
    lag = max(now - landing.at, dt.timedelta(0))
    limits = ((dg.AssetCheckSeverity.ERROR, rule.error_after), (dg.AssetCheckSeverity.WARN, rule.warn_after))
    crossed = next(((severity, limit) for severity, limit in limits if lag >= limit), None)
    if crossed:
        (severity, limit), passed = crossed, False
        verdict = f"{severity.value}: older than {hours_text(limit)}"
    else:  # a passing verdict is recorded with WARN severity (it has none)
        severity, passed, verdict = dg.AssetCheckSeverity.WARN, True, f"within {hours_text(rule.warn_after)}"
    return Verdict(
        passed=passed,
        severity=severity,
        metadata={
            "lag_hours": round(lag.total_seconds() / 3600, 3),
            "warn_after_hours": rule.warn_after.total_seconds() / 3600,
            "error_after_hours": rule.error_after.total_seconds() / 3600,
            "landed_at": dg.MetadataValue.timestamp(landing.at),
            "newest": landing.what,
        },
        description=(
            f"{source}: newest data ({landing.what}) landed {hours_text(lag)} ago, at "
            f"{landing.at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC; {verdict}."
        ),
    )


def nothing_landed(source: str, where: str) -> Verdict:
    """The verdict of a run that finds nothing ever landed (the sensor stays silent then, as
    Dagster's freshness state stays UNKNOWN before a first materialization)."""
    return Verdict(
        passed=False,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"newest": "none"},
        description=f"{source}: nothing has landed in {where} yet.",
    )


def same_verdict(verdict: Verdict, evaluation: dg.AssetCheckEvaluation | None) -> bool:
    """Whether a recorded evaluation already says what `verdict` says: same outcome, same newest
    landing. The lag alone growing is not news until it crosses a threshold."""
    if evaluation is None:
        return False
    recorded = {k: v.value for k, v in evaluation.metadata.items()}
    current = {k: getattr(v, "value", v) for k, v in verdict.metadata.items()}
    return (
        evaluation.passed == verdict.passed
        and (verdict.passed or evaluation.severity == verdict.severity)
        and all(recorded.get(k) == current.get(k) for k in ("newest", "landed_at"))
    )
