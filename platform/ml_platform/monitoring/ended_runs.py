"""Runs that ended after a cursor, in the order they ended, and what each run's events say.

The report sensor and the alert sensor both need "every run that ended since I last looked,
exactly once". Dagster records a run's end as a RUN_SUCCESS, RUN_FAILURE or RUN_CANCELED event
and mirrors those in the event log's cross-run index (also in the per-run sqlite storage of
`dagster dev`), so reading them after a storage id costs one indexed query per kind of ending,
whatever the length of the history. The storage id of a run's end event is the cursor: ids only
grow, so a run is read once. A run's check evaluations and step failures are then read from that
one run's events. Check evaluations are looked at once their run has ended: by then they are final.

Check evaluations recorded outside any run (a sensor reports them, as the landing freshness
sensor does) are filed under the empty run id; `runless_evaluations` reads those after an event
id cursor, as incrementally.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import dagster as dg

RUNLESS = ""  # the run id Dagster files check evaluations under when no run recorded them
CHECK_EVALUATION = dg.DagsterEventType.ASSET_CHECK_EVALUATION
ERROR_CHARS = 500
ENDINGS = {
    dg.DagsterEventType.RUN_SUCCESS: "SUCCESS",
    dg.DagsterEventType.RUN_FAILURE: "FAILURE",
    dg.DagsterEventType.RUN_CANCELED: "CANCELED",
}


@dataclass(frozen=True)
class EndedRun:
    storage_id: int  # of the run's end event: the readers' cursor
    run: dg.DagsterRun
    status: str  # SUCCESS, FAILURE or CANCELED
    ended_at: float  # the end event's time (seconds since the epoch)
    message: str  # the end event's words, e.g. which steps failed


def ended_runs(instance: dg.DagsterInstance, after: int, limit: int) -> tuple[list[EndedRun], int]:
    """Runs whose end event's storage id is above `after`, oldest first (at most `limit` of each
    kind of ending), and the cursor to read on from."""
    records, complete_up_to = [], math.inf
    for event_type in ENDINGS:
        found = instance.fetch_run_status_changes(
            dg.RunStatusChangeRecordsFilter(event_type, after_storage_id=after), limit=limit, ascending=True
        ).records
        if len(found) == limit:
            # More of this kind may follow: past its last one, another kind's ends could overtake
            # ones not read yet, so this call stops there and the next call goes on from it.
            complete_up_to = min(complete_up_to, found[-1].storage_id)
        records += found
    records = sorted((r for r in records if r.storage_id <= complete_up_to), key=lambda r: r.storage_id)
    if not records:
        return [], after  # (and an empty run id filter would match every run)
    runs = {r.run_id: r for r in instance.get_runs(dg.RunsFilter(run_ids=[r.run_id for r in records]))}
    ended = [
        EndedRun(
            r.storage_id,
            runs[r.run_id],
            ENDINGS[r.event_log_entry.dagster_event_type],
            r.timestamp,
            r.event_log_entry.dagster_event.message or "",
        )
        for r in records
        if r.run_id in runs  # a run deleted since is no longer anyone's business
    ]
    return ended, records[-1].storage_id


def latest_end(instance: dg.DagsterInstance) -> int:
    """The storage id of the latest run end recorded so far (0 when no run has ended)."""
    latest = 0
    for event_type in ENDINGS:
        found = instance.fetch_run_status_changes(event_type, limit=1, ascending=False).records
        if found:
            latest = max(latest, found[0].storage_id)
    return latest


@dataclass(frozen=True)
class CheckEvaluation:
    """One check evaluation a run recorded, in plain values."""

    asset: str
    check: str
    partition: str | None
    passed: bool
    severity: str  # ERROR or WARN (a passed check keeps the severity it was declared with)
    blocking: bool
    description: str | None
    metadata: dict  # name -> MetadataValue
    event_id: int  # the evaluation event's id in its run's log
    recorded_at: float  # when it was recorded (seconds since the epoch)

    @property
    def verdict(self) -> str:
        """PASS, or the severity it failed at."""
        return "PASS" if self.passed else self.severity

    @property
    def failed_at_error(self) -> bool:
        return not self.passed and self.severity == "ERROR"


def _evaluation(record) -> CheckEvaluation:
    e = record.event_log_entry.dagster_event.asset_check_evaluation_data
    return CheckEvaluation(
        asset=e.asset_key.to_user_string(),
        check=e.check_name,
        partition=e.partition,
        passed=e.passed,
        severity=e.severity.value,
        blocking=bool(e.blocking),
        description=e.description,
        metadata=dict(e.metadata),
        event_id=record.storage_id,
        recorded_at=record.timestamp,
    )


def check_evaluations(instance: dg.DagsterInstance, run_id: str) -> list[CheckEvaluation]:
    """Every check evaluation of the run, in the order it recorded them.

    A range run records each check once per partition and once for the whole range (partition
    None, its worst partition's verdict): both are returned; `per_partition` keeps the former.
    """
    return [_evaluation(r) for r in instance.get_records_for_run(run_id, of_type=CHECK_EVALUATION).records]


def runless_evaluations(
    instance: dg.DagsterInstance, cursor: str | None, limit: int
) -> tuple[list[CheckEvaluation], str | None]:
    """Check evaluations recorded outside any run (a sensor reporting them, such as the landing
    freshness sensor) after `cursor` (None: from the first), oldest first, and the cursor after them.

    They live in the event log under the empty run id; the cursor is an event id there, so each
    call reads only what is new.
    """
    found = instance.get_records_for_run(RUNLESS, cursor=cursor, of_type=CHECK_EVALUATION, limit=limit)
    return [_evaluation(r) for r in found.records], found.cursor if found.records else cursor


def latest_runless_cursor(instance: dg.DagsterInstance) -> str | None:
    """The cursor after the latest check evaluation recorded outside runs (None when there is none)."""
    latest = instance.get_records_for_run(RUNLESS, of_type=CHECK_EVALUATION, limit=1, ascending=False)
    return latest.cursor if latest.records else None


def per_partition(evaluations: list[CheckEvaluation]) -> list[CheckEvaluation]:
    """The evaluations that judge one thing each: a range run's whole-range roll-up of a check is
    left out when the same run judged that check per partition."""
    partitioned = {(e.asset, e.check) for e in evaluations if e.partition is not None}
    return [e for e in evaluations if e.partition is not None or (e.asset, e.check) not in partitioned]


def step_failures(instance: dg.DagsterInstance, run_id: str) -> list[dict]:
    """The run's failed steps, each with the error's kind and its words (on one line, cut at
    `ERROR_CHARS`; the stack trace stays in the run's logs)."""
    failures = []
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        event = entry.dagster_event
        error = event.step_failure_data.error if event.step_failure_data else None
        words = " ".join(((error.message if error else event.message) or "").split())
        failures.append(
            {"step": event.step_key, "error_type": error.cls_name if error else None, "error": words[:ERROR_CHARS]}
        )
    return failures


def run_partitions(run: dg.DagsterRun) -> dict:
    """The partition or partition range a run wrote, from its tags (empty when it had none)."""
    tags = run.tags
    if "dagster/partition" in tags:
        return {"partition": tags["dagster/partition"]}
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    return {"partition_range": [start, end]} if start and end else {}


def run_assets(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[str]:
    """The assets the run was asked to materialize: its asset selection, or for a run launched
    without one (`dg.materialize` in a script) the assets it planned to materialize."""
    keys = run.asset_selection or instance.get_asset_keys_for_run(
        run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    )
    return sorted(k.to_user_string() for k in keys)
