"""The run queue of the running platform: Dagster's queue, newest data first.

A landed file requests several runs at once: its raw day, then the event days it can hold (its own
and the late-data days before it), and `make dev` requests a week of each source. Dagster's queue
takes runs in the order they were submitted, and the automation sensor submits them oldest
partition first, so the day a user is waiting for (today's) was written last, behind runs that
rewrite older days with the same rows.

Here a run for one dated partition (or a range, by its last day) is tagged with Dagster's
`dagster/priority`: 0 for today (UTC), -n for n days before, +1 for tomorrow. The queue takes runs
by that priority (then by age), and a run's steps waiting for the duckdb pool's slot claim it by
the same priority. Runs of no partition (a training set, a snapshot source), runs whose partition
is not a date, and runs whose tags already carry a priority (a user's choice) are left as they are.
Nothing is dropped or reordered within one partition: automation never requests a partition
while its upstream is running, whatever the queue order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from dagster import DagsterRun, QueuedRunCoordinator, SubmitRunContext

from ml_platform.dagster_private import ASSET_PARTITION_RANGE_END_TAG, PARTITION_NAME_TAG, PRIORITY_TAG

# Dagster requires priorities within a signed 32-bit integer; days since year 1 are far inside.
OLDEST_PRIORITY = -1_000_000
# A stream source's micro-batch (its lag sensor's raw run, with the views it brings up to date) goes
# before every day's runs, and its steps take the warehouse slot first: a clean run of today waiting
# for the slot would otherwise take it between the raw step and the views (seconds of latency each).
MICRO_BATCH_PRIORITY = 2
STREAM_SOURCE_TAG = "ml_platform/stream_source"  # ingestion.kafka.sensor.SOURCE_TAG


def newest_first_priority(tags: Mapping[str, str], today: dt.date) -> int | None:
    """The priority of a run with these tags, or None to leave it untagged."""
    key = tags.get(PARTITION_NAME_TAG) or tags.get(ASSET_PARTITION_RANGE_END_TAG)
    if PRIORITY_TAG in tags:
        return None
    if STREAM_SOURCE_TAG in tags:
        return MICRO_BATCH_PRIORITY
    if not key:
        return None
    try:
        day = dt.date.fromisoformat(key[:10])
    except ValueError:  # a partition that is not a day (a static or dynamic partition)
        return None
    return max(OLDEST_PRIORITY, min(1, (day - today).days))


class NewestFirstRunCoordinator(QueuedRunCoordinator):
    """Dagster's `QueuedRunCoordinator` (same configuration), tagging each run's priority as it
    is submitted (module docstring)."""

    def submit_run(self, context: SubmitRunContext) -> DagsterRun:
        run = context.dagster_run
        priority = newest_first_priority(run.tags, dt.datetime.now(dt.UTC).date())
        if priority is not None:
            # The queue daemon reads runs back from storage: the stored tags are the ones that count.
            self._instance.add_run_tags(run.run_id, {PRIORITY_TAG: str(priority)})
        return super().submit_run(context)
