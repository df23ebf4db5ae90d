"""Whether a failed attempt is worth another, and when: a failure that is not the partition's own
data (the process died, the warehouse lock timed out) is retried with a backoff that doubles per
attempt; Dagster's own run retry goes first."""

from __future__ import annotations

import dagster as dg

from ml_platform import settings
from ml_platform.automation.event_log import Tick

RETRY_BACKOFF_CAP_SECONDS = 1800.0
# Dagster's run retry is launched by its daemon a moment after the failure; wait this long for it.
RUN_RETRY_GRACE_SECONDS = 60.0
# Errors of a step that are not its data's fault: the warehouse's single-writer lock.
TRANSIENT_ERRORS = ("Could not set lock on file", "Conflicting lock is held")
RETRY_TAG, RETRIED_TAG = "dagster/will_retry", "dagster/auto_retry_run_id"
FAILURE_REASON_TAG = "dagster/failure_reason"


def retry_due(tick: Tick, key: dg.AssetKey, partition: str | None, mat: int | None, record) -> bool:
    run = record.dagster_run
    if run.status != dg.DagsterRunStatus.FAILURE:
        # Canceled by a user: held. A success that wrote nothing (its step was skipped): build it.
        return run.status == dg.DagsterRunStatus.SUCCESS
    ended = record.end_time or record.update_timestamp.timestamp()
    if run.tags.get(RETRY_TAG) == "true" and RETRIED_TAG not in run.tags and tick.now - ended < RUN_RETRY_GRACE_SECONDS:
        return False  # Dagster's own run retry is about to start
    if not transient_failure(tick.instance, run):
        return False
    return tick.now - ended >= backoff_seconds(_attempts_since(tick.instance, key, partition, mat))


def transient_failure(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """Whether a failed run failed for a reason that is not its data: anything but a step failure
    (the process died, dagster dev was killed, the run never started), or a step failure on the
    warehouse's lock."""
    if run.tags.get(FAILURE_REASON_TAG) != "STEP_FAILURE":
        return True
    records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records
    for record in records:
        error = record.event_log_entry.dagster_event.step_failure_data.error
        while error is not None:
            if any(marker in (error.message or "") for marker in TRANSIENT_ERRORS):
                return True
            error = error.cause
    return False


def _attempts_since(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None, mat: int | None) -> int:
    """Runs that planned the partition since it was last written."""
    records_filter = dg.AssetRecordsFilter(
        asset_key=key, asset_partitions=[partition] if partition else None, after_storage_id=mat
    )
    records = instance.fetch_planned_materializations(records_filter, limit=64).records
    return len({r.run_id for r in records})


def backoff_seconds(attempts: int) -> float:
    """How long after the `attempts`-th failed attempt in a row the next one starts."""
    return min(settings.retry_backoff_seconds() * 2.0 ** max(attempts - 1, 0), RETRY_BACKOFF_CAP_SECONDS)
