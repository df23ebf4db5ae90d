"""What one automation tick reads of Dagster's instance, each question asked once per tick and
storage ids remembered between ticks: the latest materialization, planned run and observation of
every partition, snapshot histories' changes, and the partitions unfinished runs will write."""

from __future__ import annotations

import datetime as dt
import threading
from bisect import bisect_left, bisect_right

import dagster as dg

from ml_platform.automation.reads import CHANGED_FROM

MATERIALIZED = dg.DagsterEventType.ASSET_MATERIALIZATION
PLANNED = dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
OBSERVED = dg.DagsterEventType.ASSET_OBSERVATION


class Tick:
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
            self._in_flight = unfinished_runs_partitions(self.instance)
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
_current: list = [None, None]  # [asset graph view, Tick]


def tick_of(context: dg.AutomationContext) -> Tick:
    with _tick_lock:
        if _current[0] is not context.asset_graph_view:
            _current[0], _current[1] = context.asset_graph_view, Tick(context)
        return _current[1]


class Days:
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


def unfinished_runs_partitions(instance: dg.DagsterInstance) -> dict[dg.AssetKey, set[str | None]]:
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
