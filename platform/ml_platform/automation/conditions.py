"""The platform's own automation conditions, evaluated from the event log at every tick: `Stale`
(something a partition reads was written after it), `Recover` (its last attempt wrote nothing and
deserves another), `InFlight` (an unfinished run will write it)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import dagster as dg

from ml_platform.automation.event_log import MATERIALIZED, OBSERVED, PLANNED, Days, Tick, tick_of
from ml_platform.automation.reads import READ_DAYS, Read
from ml_platform.automation.retry import retry_due


@dataclass(frozen=True)
class _Partition:
    key: str | None
    day: dt.date | None


class _Inputs:
    """What a partition reads, as storage ids: is any of it newer than a given id?"""

    def __init__(self, tick: Tick, target: dg.AssetKey, reads: tuple[Read, ...]):
        self.tick, self.target, self.reads = tick, target, reads
        self._days = {r.table: Days(tick.latest(dg.AssetKey(r.table), MATERIALIZED)) for r in reads if r.windowed}
        self._recorded: dict | None = None

    def newer(self, partition: _Partition, than: int | None, final: bool = False, unpooled_than: int | None = None):
        """The storage id of an input of `partition` written after `than` (None: any input), or
        None. `final`: a label partition written final no longer reads its clock. `unpooled_than`:
        the id to compare inputs written outside the warehouse pool with (see `Read.pooled`)."""
        for read in self.reads:
            if read.until_final and final:
                continue
            bound = than if read.pooled or unpooled_than is None else unpooled_than
            found = self._newest(read, partition, bound)
            if found is not None and (bound is None or found > bound):
                return found
        return None

    def _newest(self, read: Read, partition: _Partition, than: int | None) -> int | None:
        key = dg.AssetKey(read.table)
        if read.as_of:
            return self._snapshot(key, read, partition, than)
        if read.windowed and partition.day is not None:
            first = None if read.first is None else partition.day + dt.timedelta(days=read.first)
            last = None if read.last is None else partition.day + dt.timedelta(days=read.last)
            return self._days[read.table].newest(first, last)
        if read.recorded:
            if than is None:
                return None  # never built: what it will record reading says nothing yet (a set needs its label)
            window = self._recorded_window(read.table)
            if window is not None and self.tick.partitioned(key):
                return Days(self.tick.latest(key, MATERIALIZED)).newest(*window)
        entry = self.tick.entry(key)
        return entry.last_materialization_storage_id if entry else None

    def _snapshot(self, key: dg.AssetKey, read: Read, partition: _Partition, than: int | None) -> int | None:
        """The newest change of a snapshot history after `than` that reaches a day the partition
        reads (any change, before its first build)."""
        changes = self.tick.snapshot_changes(key)
        if not changes:
            return None
        if than is None or partition.day is None:
            return changes[-1][0]
        latest_day = partition.day + dt.timedelta(days=max(read.as_of))
        for storage_id, changed_from in reversed(changes):
            if storage_id <= than:
                return None
            if changed_from is None or changed_from <= latest_day:
                return storage_id
        return None

    def _recorded_window(self, table: str) -> tuple[dt.date, dt.date] | None:
        if self._recorded is None:
            entry = self.tick.entry(self.target)
            record = entry.last_materialization_record if entry else None
            value = record.asset_materialization.metadata.get(READ_DAYS) if record else None
            self._recorded = dict(value.value) if value is not None else {}
        days = self._recorded.get(table)
        return None if not days else (dt.date.fromisoformat(days[0]), dt.date.fromisoformat(days[1]))


def _partitions(context: dg.AutomationContext) -> list[_Partition]:
    if context.candidate_subset.is_empty:
        return []
    if context.partitions_def is None:
        return [_Partition(None, None)]
    keys = sorted(context.candidate_subset.expensively_compute_partition_keys())
    return [_Partition(k, dt.date.fromisoformat(k)) for k in keys]


def _result(context: dg.AutomationContext, true: list[_Partition]) -> dg.AutomationResult:
    if context.partitions_def is None:
        subset = context.candidate_subset if true else context.get_empty_subset()
    else:
        subset = context.candidate_subset.compute_intersection_with_partition_keys({p.key for p in true})
    return dg.AutomationResult(context, true_subset=subset)


class _PlatformCondition(dg.AutomationCondition):
    """A condition evaluated from the event log at each tick; it keeps no state of its own."""

    def __init__(self, reads: tuple[Read, ...] = ()):
        self.reads = tuple(reads)

    @property
    def requires_cursor(self) -> bool:
        return False


class InFlight(_PlatformCondition):
    """True for a partition that any unfinished run (queued or running) will write. Dagster's
    `in_progress` looks only at the run that planned the partition last: a run queued before a
    restart of `dagster dev` and a newer one could both be in flight, and two overlapping runs of
    one partition can record their check results in the other order than their writes, which
    leaves the newest write without a check result (`platform_tests/test_make_dev_chaos.py`)."""

    @property
    def name(self) -> str:
        return "planned_by_an_unfinished_run"

    @property
    def description(self) -> str:
        return "a queued or running run will write the partition"

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        planned = tick_of(context).in_flight().get(context.key, set())
        return _result(context, [p for p in _partitions(context) if p.key in planned])


class Stale(_PlatformCondition):
    """True for a partition built before something it reads was last written, and for one never
    attempted whose inputs exist (a label's, once its clock has a partition).

    "Before" compares storage ids with the partition's own materialization: every warehouse writer
    holds the `duckdb` pool's only slot from its first read to after its materialization is
    stored, so an input stored before it was read by it, and one stored after was not. An input
    written outside the pool (`Read.pooled=False`) is compared with the build's planned event,
    which precedes its read: at worst one rebuild too many."""

    @property
    def name(self) -> str:
        return "inputs_newer_than_build"

    @property
    def description(self) -> str:
        return "something the partition reads was written after it was built"

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        tick = tick_of(context)
        key = context.key
        plans, mats = tick.latest(key, PLANNED), tick.latest(key, MATERIALIZED)
        clocks = tuple(r for r in self.reads if r.until_final)
        not_final = tick.latest(key, OBSERVED) if clocks else {}
        inputs = _Inputs(tick, key, self.reads)
        clock = _Inputs(tick, key, clocks)
        true = []
        for partition in _partitions(context):
            plan, mat = plans.get(partition.key), mats.get(partition.key)
            if mat is None:
                # Never attempted: built once what it reads exists (a label once its clock does).
                if plan is None and inputs.newer(partition, None) and (not clocks or clock.newer(partition, None)):
                    true.append(partition)
                continue  # an attempt that wrote nothing: Recover decides
            if plan is not None and plan > mat:
                continue  # the last attempt did not write it: Recover decides
            final = mat > not_final.get(partition.key, -1)
            if clocks and not final:
                # Written empty before it was final: only its clock reaching it changes that (an
                # update of what it reads would rewrite it empty: thirty runs a day for churn).
                if clock.newer(partition, mat):
                    true.append(partition)
            elif inputs.newer(partition, mat, final, unpooled_than=plan):
                true.append(partition)
        return _result(context, true)


class Recover(_PlatformCondition):
    """True for a partition whose last attempt ended without writing it, when it is worth another:
    something it reads changed since the attempt was planned, or the attempt failed for a reason
    that is not its data and its backoff has passed."""

    @property
    def name(self) -> str:
        return "failed_attempt_to_retry"

    @property
    def description(self) -> str:
        return "its last run died or failed for a reason that is not its data, and its backoff has passed"

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        tick = tick_of(context)
        key = context.key
        plans, mats = tick.latest(key, PLANNED), tick.latest(key, MATERIALIZED)
        inputs = _Inputs(tick, key, self.reads)
        true = []
        for partition in _partitions(context):
            plan, mat = plans.get(partition.key), mats.get(partition.key)
            if plan is None or (mat is not None and mat > plan):
                continue
            run_id = tick.planned_run_id(key, partition.key)
            record = tick.run(run_id) if run_id else None
            if record is not None and not record.dagster_run.is_finished:
                continue  # queued or running
            if inputs.newer(partition, plan) or record is None or retry_due(tick, key, partition.key, mat, record):
                true.append(partition)
        return _result(context, true)
