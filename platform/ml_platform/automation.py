"""When assets update by themselves: a partition is rebuilt when something it reads is newer than it.

Each curated table, clean table and training set declares everything a partition reads (`Read`:
upstream days as offsets from its own day, all history before it, a snapshot history as of a day,
a label's clock). The Dagster dependencies are derived from the same declarations, and the
condition here compares storage ids in Dagster's event log: a partition is **stale** when a
materialization of any partition it reads was stored after its own last build was planned. That
is a state, computed afresh at every tick, not an event to catch: a run that dies, a tick that
sees the partition's own write and an upstream write at once, an update while its run waited in
the queue, a restart of `dagster dev`: whatever happened in between, the next tick sees the same
comparison and requests the partition again. So late files, retries and crash recovery converge
by construction (`docs/guarantees.md`).

Why not Dagster's `any_deps_updated().since_last_handled()`: it is an edge, and an edge can be
lost. When a partition's own materialization and a newer upstream materialization are first seen
on the same tick, `since` resets (its and/or operands carry no timestamps to order them), and the
partition is never requested again though it was built from the older input. In a catch-up, two
runs finishing within one tick is common (platform_tests/test_convergence.py reproduces it). And
a request counts as handled when it is made: a run killed twice (out of run retries) is forgotten.

A partition whose last attempt did not materialize it (`Recover`):
- its run is still queued or running: nothing (in progress);
- it failed for a reason that is not its own data (the process died, dagster dev was killed, the
  warehouse lock timed out): requested again after a backoff that doubles with each failed attempt
  (`settings.retry_backoff_seconds`, at most `RETRY_BACKOFF_CAP_SECONDS`), also once Dagster's own run
  retry is used up; while Dagster's retry is still to come, it waits for it;
- it failed on its own data (an error in its SQL or its accounting) or was canceled by a user: held,
  until something it reads changes.
A partition whose blocking check failed was materialized: it stays as it is, and what reads it is
held back (below), until something it reads changes.

The rest of the condition is as before:
- never while the partition or anything it reads is in progress, never on a partition whose
  blocking checks failed (Dagster's dependency conditions hold when *any* mapped upstream partition
  matches: `all_deps_blocking_checks_passed` means "passed on some day of the window", so
  `~any_deps_match(check failed)` holds the partition back when any day it reads failed);
- a table reading only its own day may run in the same run as that day's upstream (Dagster puts
  partitions of one key requested on one tick in one run, upstream first); a table reading other
  days waits for the tick after its upstream was written (`same_day`);
- a table with a `schedule` (a stream's clean table, whose raw partition every micro-batch
  writes) is requested at most once between two ticks of its cron schedule;
- a table reading a window of days is kept current by automation only for its latest days
  (`recent_days`): data is at most a week late, so every partition a late file can change lies in
  the latest eight days however long the window; older history is backfilled, and the audit
  (`python -m ml_platform audit`) reports any partition left behind.
"""

from __future__ import annotations

import datetime as dt
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

import dagster as dg

from ml_platform import settings

AC = dg.AutomationCondition

MATERIALIZED = dg.DagsterEventType.ASSET_MATERIALIZATION
PLANNED = dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
OBSERVED = dg.DagsterEventType.ASSET_OBSERVATION

# A snapshot history's materialization says from which day on its versions may have changed.
CHANGED_FROM = "ml_platform/changed_from"
# An unpartitioned reader's materialization says which upstream days it read: {table: [first, last]}.
READ_DAYS = "ml_platform/read_days"
# A label partition written before it was final is observed with this metadata after its write.
NOT_FINAL = "ml_platform/not_final"

RETRY_BACKOFF_CAP_SECONDS = 1800.0
# Dagster's run retry is launched by its daemon a moment after the failure; wait this long for it.
RUN_RETRY_GRACE_SECONDS = 60.0
# Errors of a step that are not its data's fault: the warehouse's single-writer lock.
TRANSIENT_ERRORS = ("Could not set lock on file", "Conflicting lock is held")
RETRY_TAG, RETRIED_TAG = "dagster/will_retry", "dagster/auto_retry_run_id"
FAILURE_REASON_TAG = "dagster/failure_reason"


@dataclass(frozen=True)
class Read:
    """What a partition of a table reads of one upstream table.

    - A daily-partitioned upstream: the days from `first` to `last`, as offsets from the partition's
      own day (`(-30, -1)`: the 30 days before it); `first=None`: every day before, `last=None`:
      every day after.
    - An unpartitioned snapshot history (versions with `valid_from` / `valid_to`): `as_of`, the days
      whose versions it reads, as offsets (`(-1,)`: the versions valid the day before).
    - An unpartitioned table read whole: `first=None, last=None`, no `as_of`.
    - `until_final`: a clock, read only to decide whether a label partition is final; once the
      partition is written final, a newer clock changes nothing.
    - `recorded`: for an unpartitioned reader (a training set), only the upstream days its last
      build recorded in its metadata (`READ_DAYS`).
    - `pooled`: the upstream is written in the warehouse pool, one writer at a time (every layer
      but a parallel raw run, which commits outside it).
    """

    table: str
    first: int | None = 0
    last: int | None = 0
    as_of: tuple[int, ...] = ()
    until_final: bool = False
    recorded: bool = False
    pooled: bool = True

    def __post_init__(self):
        if self.first is not None and self.last is not None and self.first > self.last:
            raise ValueError(f"read of {self.table}: days must be (first, last) with first <= last")
        if self.as_of and (self.first, self.last) != (None, None):
            raise ValueError(f"read of {self.table}: a snapshot read as of days has no window of days")

    @classmethod
    def days(cls, table: str, first: int | None, last: int | None, until_final: bool = False) -> Read:
        return cls(table, first, last, until_final=until_final)

    @classmethod
    def snapshot(cls, table: str, *as_of: int) -> Read:
        return cls(table, None, None, as_of=tuple(as_of))

    @classmethod
    def whole(cls, table: str, recorded: bool = False, pooled: bool = True) -> Read:
        return cls(table, None, None, recorded=recorded, pooled=pooled)

    @property
    def windowed(self) -> bool:
        """Reads a window of a partitioned upstream's days (not a snapshot, not the whole table)."""
        return not self.as_of and (self.first, self.last) != (None, None)


def mapping_window(reads: Iterable[Read]) -> tuple[int | None, int | None]:
    """The one window of days covering several reads of the same partitioned table (Dagster's
    dependency has one partition mapping per table)."""
    reads = list(reads)
    first = None if any(r.first is None for r in reads) else min(r.first for r in reads)
    last = None if any(r.last is None for r in reads) else max(r.last for r in reads)
    return first, last


# --- what one tick reads from the instance -----------------------------------------------------


class _Tick:
    """The instance's event log as one evaluation sees it, each question asked at most once: every
    asset's condition on a tick shares it (several tables read clean_events). Latest storage ids
    are kept between ticks (`_Known`): a tick asks only for what was written since the last one."""

    def __init__(self, context: dg.AutomationContext):
        self.instance = context.asset_graph_view.instance
        self.graph = context.asset_graph
        self.now = context.evaluation_time.timestamp()
        self.max_id = context.max_storage_id
        self.known = _known(self.instance)
        self._entries: dict[dg.AssetKey, object] = {}
        self._runs: dict[str, object] = {}
        self._changes: dict[dg.AssetKey, list] = {}
        self._planned: dict[tuple, object] = {}
        self._in_flight: dict[dg.AssetKey, set[str | None]] | None = None

    def in_flight(self) -> dict[dg.AssetKey, set[str | None]]:
        """Per asset, the partitions (None: unpartitioned) some unfinished run will write."""
        if self._in_flight is None:
            self._in_flight = _in_flight(self.instance)
        return self._in_flight

    def partitioned(self, key: dg.AssetKey) -> bool:
        return self.graph.get(key).partitions_def is not None

    def entry(self, key: dg.AssetKey):
        """The asset's record (latest materialization, planned run, observation), all assets' read
        in one query per tick."""
        if not self._entries:
            self._entries = self.known.entries(self.instance, self.graph, self.max_id)
        return self._entries.get(key)

    def latest(self, key: dg.AssetKey, event: dg.DagsterEventType) -> dict[str | None, int]:
        """The storage id of each partition's latest event of that kind ({None: id} unpartitioned)."""
        if not self.partitioned(key):
            if event == PLANNED:
                info = self.planned(key, None)
                return {} if info is None else {None: info.storage_id}
            entry = self.entry(key)
            storage_id = None
            if entry is not None:
                storage_id = {
                    MATERIALIZED: entry.last_materialization_storage_id,
                    OBSERVED: entry.last_observation_storage_id,
                }[event]
            return {} if storage_id is None else {None: storage_id}
        return self.known.latest(self.instance, key, event, self.max_id)

    def planned(self, key: dg.AssetKey, partition: str | None):
        """The latest planned materialization (storage id, run id) of a partition, or None. (SQLite
        storage does not keep it in the asset's record.)"""
        if (key, partition) not in self._planned:
            self._planned[(key, partition)] = self.instance.get_latest_planned_materialization_info(key, partition)
        return self._planned[(key, partition)]

    def snapshot_changes(self, key: dg.AssetKey) -> list[tuple[int, dt.date | None]]:
        if key not in self._changes:
            self._changes[key] = self.known.snapshot_changes(self.instance, key)
        return self._changes[key]

    def run(self, run_id: str):
        if run_id not in self._runs:
            self._runs[run_id] = self.instance.get_run_record_by_id(run_id)
        return self._runs[run_id]

    def planned_run_id(self, key: dg.AssetKey, partition: str | None) -> str | None:
        info = self.planned(key, partition)
        return info.run_id if info else None


class _Known:
    """What earlier ticks read of one instance's event log, by storage id (ids never change
    meaning): per asset and event kind the latest id of each partition as of `through`, and the
    snapshot histories' changes."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ids: dict[tuple, dict[str | None, int]] = {}
        self.through: dict[tuple, int | None] = {}
        self.changes: dict[dg.AssetKey, list[tuple[int, dt.date | None]]] = {}
        self._entries: tuple[int | None, dict] | None = None

    def entries(self, instance, graph, max_id: int | None) -> dict:
        with self.lock:
            if self._entries is None or self._entries[0] != max_id:
                keys = list(graph.get_all_asset_keys())
                found = {r.asset_entry.asset_key: r.asset_entry for r in instance.get_asset_records(keys)}
                self._entries = (max_id, found)
            return self._entries[1]

    def latest(self, instance, key: dg.AssetKey, event, max_id: int | None) -> dict[str | None, int]:
        with self.lock:
            known = (key, event)
            if known in self.ids and self.through[known] == max_id:
                return self.ids[known]
            after = self.through.get(known)
            found = instance.get_latest_storage_id_by_partition(key, event, after_cursor=after)
            merged = {**self.ids.get(known, {}), **found}
            self.ids[known], self.through[known] = merged, max_id
            return merged

    def snapshot_changes(self, instance, key: dg.AssetKey) -> list[tuple[int, dt.date | None]]:
        """(storage id, changed_from) of every materialization of a snapshot history, oldest first.
        A materialization without the figure (written before it existed) may have changed any day."""
        with self.lock:
            known = self.changes.setdefault(key, [])
            cursor = None
            while True:
                page = instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=key, after_storage_id=known[-1][0] if known else None),
                    limit=100,
                    cursor=cursor,
                    ascending=True,
                )
                for record in page.records:
                    value = record.asset_materialization.metadata.get(CHANGED_FROM)
                    day = dt.date.fromisoformat(value.value) if value is not None and value.value else None
                    known.append((record.storage_id, day))
                if not page.has_more:
                    return list(known)
                cursor = page.cursor


_known_lock = threading.Lock()
_known_by_instance: dict[tuple, _Known] = {}


def _known(instance: dg.DagsterInstance) -> _Known:
    key = (type(instance.event_log_storage).__name__, getattr(instance, "root_directory", None))
    with _known_lock:
        return _known_by_instance.setdefault(key, _Known())


_tick_lock = threading.Lock()
_current: list = [None, None]  # [asset graph view, _Tick]


def _tick(context: dg.AutomationContext) -> _Tick:
    with _tick_lock:
        if _current[0] is not context.asset_graph_view:
            _current[0], _current[1] = context.asset_graph_view, _Tick(context)
        return _current[1]


class _Days:
    """A partitioned upstream's latest storage ids by day, for the newest id in a window of days."""

    def __init__(self, ids: dict[str | None, int]):
        items = sorted((dt.date.fromisoformat(k), v) for k, v in ids.items() if k is not None)
        self.days = [d for d, _ in items]
        self.ids = [v for _, v in items]
        self.prefix = _running_max(self.ids)
        self.suffix = _running_max(self.ids[::-1])[::-1]

    def newest(self, first: dt.date | None, last: dt.date | None) -> int | None:
        lo = 0 if first is None else bisect_left(self.days, first)
        hi = len(self.days) if last is None else bisect_right(self.days, last)
        if lo >= hi:
            return None
        if lo == 0:
            return self.prefix[hi - 1]
        if hi == len(self.days):
            return self.suffix[lo]
        return max(self.ids[lo:hi])


def _running_max(values: list[int]) -> list[int]:
    result, best = [], -1
    for value in values:
        best = max(best, value)
        result.append(best)
    return result


UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.MANAGED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def _in_flight(instance: dg.DagsterInstance) -> dict[dg.AssetKey, set[str | None]]:
    found: dict[dg.AssetKey, set[str | None]] = {}
    for run in instance.get_runs(dg.RunsFilter(statuses=UNFINISHED)):
        partitions = run_partitions(run.tags)
        for key in run.asset_selection or ():
            found.setdefault(key, set()).update(partitions)
    return found


def run_partitions(tags: dict[str, str]) -> set[str | None]:
    """The partition keys a run writes, from its tags: its partition, every day of its range, or
    {None} (unpartitioned assets)."""
    from ml_platform.dagster_private import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    if "dagster/partition" in tags:
        return {tags["dagster/partition"]}
    start, end = tags.get(ASSET_PARTITION_RANGE_START_TAG), tags.get(ASSET_PARTITION_RANGE_END_TAG)
    if start and end:
        first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
        return {(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)}
    return {None}


# --- staleness ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Partition:
    key: str | None
    day: dt.date | None


class _Inputs:
    """What a partition reads, as storage ids: is any of it newer than a given id?"""

    def __init__(self, tick: _Tick, target: dg.AssetKey, reads: tuple[Read, ...]):
        self.tick, self.target, self.reads = tick, target, reads
        self._days = {r.table: _Days(tick.latest(dg.AssetKey(r.table), MATERIALIZED)) for r in reads if r.windowed}
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
                return _Days(self.tick.latest(key, MATERIALIZED)).newest(*window)
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
        planned = _tick(context).in_flight().get(context.key, set())
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
        tick = _tick(context)
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
        tick = _tick(context)
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
            if inputs.newer(partition, plan) or record is None or _retry_due(tick, key, partition.key, mat, record):
                true.append(partition)
        return _result(context, true)


def _retry_due(tick: _Tick, key: dg.AssetKey, partition: str | None, mat: int | None, record) -> bool:
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


# --- the conditions assets use ------------------------------------------------------------------


def _idle() -> dg.AutomationCondition:
    """No run of the partition queued or running, the latest or any other."""
    return ~AC.in_progress() & ~InFlight()


def _unchecked() -> dg.AutomationCondition:
    """The partition's latest write has no result of a blocking check, though its run did not fail:
    two runs overlapped (their results recorded out of order) or a run died between the write and
    its checks. What reads it would wait for a verdict forever; a rebuild gives one. (A run that
    failed is `Recover`'s: a check that raised is the partition's own fault and stays held.)"""
    return (
        AC.any_checks_match(~AC.check_passed() & ~AC.check_failed(), blocking_only=True)
        & ~AC.missing()
        & ~AC.execution_failed()
    ).with_label("latest_write_has_no_check_result")


def _gates() -> dg.AutomationCondition:
    return (
        ~AC.any_deps_in_progress()
        & AC.all_deps_blocking_checks_passed()
        & ~AC.any_deps_match(AC.any_checks_match(AC.check_failed(), blocking_only=True)).with_label(
            "no_dep_blocking_check_failed"
        )
    )


def on_upstream_update(
    reads: tuple[Read, ...],
    recent_days: int | None = None,
    same_day: tuple[str, ...] = (),
    schedule: str | None = None,
) -> dg.AutomationCondition:
    """A partitioned table's condition (module docstring). `reads`: everything a partition reads.
    `recent_days`: only partitions within that many days of the latest one are automated.
    `same_day`: upstream tables of which a partition reads only its own day. A partition may be
    requested in the same tick as those (Dagster counts a dependency requested on this tick as
    updated and passed, and puts partitions of one key in one run, upstream first). Beside any
    other upstream being requested it would run in another run, before that is written, and again
    once it is: it waits for the tick after.
    `schedule`: a cron schedule (UTC); a partition is requested at most once between two of its
    ticks (a stream's clean table: raw is written by every micro-batch). Staleness is a state, so
    the updates in between are not lost: the first evaluation after the next tick sees them and
    makes one run."""
    wanted = Stale(reads) | Recover(reads) | _unchecked()
    if same_day:
        chained = AC.any_deps_match(AC.will_be_requested()).allow(dg.AssetSelection.assets(*same_day))
        wanted = wanted | chained.with_label("same_day_upstream_requested_now")
    condition = _idle() & wanted & _gates()
    others = AC.any_deps_match(AC.will_be_requested())
    if same_day:
        others = others.ignore(dg.AssetSelection.assets(*same_day))
    condition = condition & ~others.with_label("other_upstream_requested_now")
    if recent_days is not None:
        condition = AC.in_latest_time_window(dt.timedelta(days=recent_days)) & condition
    if schedule is not None:
        condition = condition & AC.cron_tick_passed(schedule).since(AC.newly_requested()).with_label(
            f"tick_of_{schedule}_since_requested"
        )
    return condition.with_label("on_upstream_update")


def on_new_input(reads: tuple[Read, ...]) -> dg.AutomationCondition:
    """For an unpartitioned asset built from whole tables (a training set, a model, the serving
    snapshot): rebuilt when something it reads is newer, never while a dependency runs or a
    partition of one fails its blocking check. Unlike `on_upstream_update` it does not wait for
    every dependency to have passed checks: a table never materialized (a source not configured
    here) would hold it back forever."""
    return (
        _idle()
        & (Stale(reads) | Recover(reads) | _unchecked())
        & ~AC.any_deps_in_progress()
        & ~AC.any_deps_match(AC.any_checks_match(AC.check_failed(), blocking_only=True)).with_label(
            "no_dep_blocking_check_failed"
        )
    ).with_label("on_new_input")


def on_failure_only() -> dg.AutomationCondition:
    """For an asset its own trigger requests (a raw partition: the landing sensor, a schedule):
    automation only retries an attempt that died or failed for a reason that is not its data."""
    return (_idle() & Recover()).with_label("retry_failed_attempt")
