"""One machine-readable quality report per run: `<data>/reports/quality/<run_id>.json`.

The report holds every check evaluation the run recorded (asset, check, partition, verdict,
severity, blocking, description), each with its measured values, its thresholds and, from the
code location, the rule it applies in words. It is built from the run's own events in the Dagster
instance, never from the warehouse, by the `quality_reports` sensor (RUNNING by default): every
run that ends (succeeded, failed or canceled) gets its report, and no asset body has to know about
reports. A run without checks gets a report too, with an empty list, so "no report" always means
"not written yet" rather than "nothing was checked".

The sensor reads the run ends after its cursor (`ended_runs`, one indexed query per kind of
ending) and at most `BATCH` runs per tick, so a first start on a long history catches up over a
few ticks. Writing a report twice gives the same file (written to a temporary name, then renamed).

Values and thresholds both come from the check's numeric metadata: a name in `THRESHOLD_KEYS`
is a limit the check compared with, any other number is a measured value. Text and JSON
metadata (failing rules, findings, samples) go under `details` as recorded.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import dagster as dg

from ml_platform import settings
from ml_platform.monitoring.ended_runs import (
    CheckEvaluation,
    EndedRun,
    check_evaluations,
    ended_runs,
    run_assets,
    run_partitions,
)

REPORT_SENSOR = "quality_reports"
BATCH = 50
# Numeric check metadata that holds a limit rather than a measurement (checks/contract.py,
# checks/volume.py, checks/late_arrivals.py, checks/landing_freshness.py): a check
# that records a new kind of limit names it here to have it listed under `thresholds`.
THRESHOLD_KEYS = frozenset(
    {
        "max_quarantined_fraction",
        "min_rows",
        "warn_low",
        "warn_high",
        "tolerance_days",
        "warn_after_hours",
        "error_after_hours",
    }
)


def _iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat()


def _plain(value: dg.MetadataValue):
    """A metadata value as JSON can hold it (JSON metadata as its data, anything else as text)."""
    raw = value.value
    if raw is None or isinstance(raw, bool | int | float | str | list | dict):
        return raw
    return str(raw)


def check_entry(evaluation: CheckEvaluation, rule: str | None) -> dict:
    values, thresholds, details = {}, {}, {}
    for name, value in evaluation.metadata.items():
        plain = _plain(value)
        if isinstance(plain, bool | int | float):
            (thresholds if name in THRESHOLD_KEYS else values)[name] = plain
        else:
            details[name] = plain
    return {
        "asset": evaluation.asset,
        "check": evaluation.check,
        "partition": evaluation.partition,
        "verdict": evaluation.verdict,
        "passed": evaluation.passed,
        "severity": evaluation.severity,
        "blocking": evaluation.blocking,
        "description": evaluation.description,
        "rule": rule,
        "values": values,
        "thresholds": thresholds,
        "details": details,
    }


def build_report(
    instance: dg.DagsterInstance, ended: EndedRun, rules: dict[tuple[str, str], str] | None = None
) -> dict:
    """The report of one ended run. `rules`: (asset, check) -> the check's description in the
    code location (its thresholds in words), when known."""
    evaluations = check_evaluations(instance, ended.run.run_id)
    # Sorted so two reports of runs over the same assets line up; a range run's whole-range
    # roll-up (partition None) comes before its partitions.
    entries = sorted(
        (check_entry(e, (rules or {}).get((e.asset, e.check))) for e in evaluations),
        key=lambda c: (c["asset"], c["check"], c["partition"] or ""),
    )
    record = instance.get_run_record_by_id(ended.run.run_id)
    started = record.start_time if record else None
    return {
        "run_id": ended.run.run_id,
        "job": ended.run.job_name,
        "status": ended.status,
        "started_at": _iso(started),
        "ended_at": _iso(ended.ended_at),
        "duration_seconds": None if started is None else round(ended.ended_at - started, 3),
        "assets": run_assets(instance, ended.run),
        **run_partitions(ended.run),
        "summary": {
            "checks": len(entries),
            "passed": sum(c["passed"] for c in entries),
            "warn": sum(c["verdict"] == "WARN" for c in entries),
            "error": sum(c["verdict"] == "ERROR" for c in entries),
        },
        "checks": entries,
    }


def report_path(run_id: str, directory: Path | None = None) -> Path:
    return (directory or settings.quality_reports_dir()) / f"{run_id}.json"


def write_report(report: dict, directory: Path | None = None) -> Path:
    """Write the report atomically: a reader never sees half a file."""
    path = report_path(report["run_id"], directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(report, indent=2, default=str) + "\n")
    os.replace(partial, path)
    return path


def check_rules(repository_def) -> dict[tuple[str, str], str]:
    """(asset, check) -> the check's description, from the code location's asset graph."""
    if repository_def is None:
        return {}
    graph = repository_def.asset_graph
    return {
        (key.asset_key.to_user_string(), key.name): graph.get(key).description
        for key in graph.asset_check_keys
        if graph.get(key).description
    }


def quality_report_sensor() -> dg.SensorDefinition:
    @dg.sensor(
        name=REPORT_SENSOR,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=settings.monitoring_interval_seconds(),
        description=(
            "Writes one JSON quality report per ended run to <data>/reports/quality/<run_id>.json: "
            "every check evaluation with its verdict, values and thresholds."
        ),
    )
    def _reports(context: dg.SensorEvaluationContext):
        after = int(context.cursor or 0)
        ended, read_up_to = ended_runs(context.instance, after, BATCH)
        if read_up_to == after:
            return dg.SkipReason("no run ended since the last report")
        rules = check_rules(context.repository_def)
        for run in ended:
            path = write_report(build_report(context.instance, run, rules))
            context.log.info(f"quality report of run {run.run.run_id} ({run.status}): {path}")
        context.update_cursor(str(read_up_to))
        return dg.SkipReason(f"wrote {len(ended)} quality report(s)")

    return _reports
