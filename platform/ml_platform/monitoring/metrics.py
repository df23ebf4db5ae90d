"""The platform's metrics in Prometheus' text format, read from the Dagster instance at each scrape.

A custom collector: every scrape asks the instance (runs, materialization metadata, check
evaluations) for the current figures, so the numbers are those the UI shows and nothing has to be
pushed by the assets. It never opens the warehouse (see the package docstring).

Metrics (every name starts with `ml_platform_`):

| metric | labels | what it measures |
|---|---|---|
| `rows_ingested` | source | rows in the source's raw table (`dagster/row_count` of its latest raw materialization) |
| `rows_accepted` | source | rows the clean table holds: each partition's accepted rows at its latest write, summed |
| `rows_quarantined` | source | rows in quarantine: each partition's quarantined rows at its latest write, summed |
| `runs` | status | runs in the instance with that status (every Dagster run status, 0 included) |
| `recent_run_duration_seconds` | quantile | 0.5, 0.9 and 1 (the longest) of the last `RECENT_RUNS` ended runs' durations |
| `last_run_duration_seconds` | asset | duration of the latest ended run (of the last `RECENT_RUNS`) that targeted the asset |
| `last_run_failed` | asset | 1 when that run failed, else 0 |
| `failing_checks` | asset, check, severity | partitions (1 for an unpartitioned check) whose latest evaluation failed at that severity |
| `last_ingestion_timestamp_seconds` | source | when the source's raw table was last written (Unix time) |
| `last_landed_timestamp_seconds` | source | when the source's newest data landed, as its `landing_freshness` check last saw it |
| `freshness_lag_seconds` | source | now minus when the newest data landed (before the landing check has run: minus the last ingestion) |
| `stream_lag_messages` | source, partition | a stream source's messages not yet in raw, per topic partition, as its lag sensor last observed |
| `stream_lag_observed_timestamp_seconds` | source | when that observation was recorded (Unix time): how current the lag is |
| `audit_partitions_checked` | asset | partitions the latest consistency audit recomputed from their inputs (`audit` check, `python -m ml_platform audit`) |
| `audit_partitions_differing` | asset | of those, the partitions whose warehouse rows differ from the recomputation |
| `audit_timestamp_seconds` | asset | when that audit ran (Unix time) |
| `scrape_duration_seconds` | | how long collecting these took |

Freshness is about the data, not the runs: a raw run that re-reads a day writes a new
materialization without bringing anything newer. So the lag is measured from `landed_at`, the
landing time of the source's newest data that its raw `landing_freshness` check records (for file
sources the newest landed file, ingested or not; for database and API sources the latest
extraction), read from the check's latest evaluation, in a run or reported by its sensor. Until
that check has been evaluated, the lag is measured from the latest raw materialization. A source
never ingested and never checked has no freshness series.

Stream lag is read the same way: a stream source's lag sensor polls the broker's watermarks and
records the lag as an `AssetObservation` of the raw asset (`lag/partition_<n>`, `lag/total`); a
scrape reads the latest one. The metrics server never talks to the broker: a scrape cannot hang on
an unreachable broker, no broker client lives in the monitoring process, and the figures are those
the UI plots. The price is age: the lag is as old as the sensor's last observation (one per change,
at least one a minute while the broker answers), which `stream_lag_observed_timestamp_seconds` shows.

Cost of a scrape. The number of queries grows with the sources, assets and checks, and what
they return with the partitions, not with the history: one asset-records query for the raw and
unpartitioned clean tables; one latest-storage-id-per-partition query per partitioned clean
table; one count query per run status; one query for the last `RECENT_RUNS` run records; Dagster's
partition-status query per check; one latest-evaluation query per source's landing check and one
for all the audit checks.
Materialization metadata, failed checks' severities and ended runs' assets are read once and kept
(by storage id or run id, which never change meaning), so a scrape reads only events that are new
since the previous one. The partition-status queries are most of the cost: each groups its check's
executions by partition inside the event database. Measured on a 3-day demo instance (42 runs, 72
checks, quiet 2-core machine): 0.4 to 0.65 s per scrape (docs/monitoring.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import dagster as dg
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ml_platform.checks.audit import AUDIT_CHECK, CHECKED, DIFFERING
from ml_platform.checks.landing_freshness import LANDING_FRESHNESS_CHECK

# Not exported at dagster's top level in 1.13: they select one partition's failed check executions.
from ml_platform.dagster_private import AssetCheckExecutionRecordStatus, PartitionKeyFilter
from ml_platform.monitoring.ended_runs import run_assets

RECENT_RUNS = 100
# The lag observations' metadata names (written by the stream lag sensor, ingestion/kafka/sensor.py).
STREAM_LAG_PARTITION = "lag/partition_"
QUANTILES = (0.5, 0.9, 1.0)
FAILED = AssetCheckExecutionRecordStatus.FAILED
ENDED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


@dataclass(frozen=True)
class SourceAssets:
    """What the metrics need to know of a source: its name and its raw and clean assets."""

    name: str
    raw: str
    clean: str
    partitioned: bool
    # A stream source: its raw asset carries lag observations.
    streaming: bool = False


def quantile(ordered: list[float], q: float) -> float:
    """The q-quantile of sorted values, interpolated linearly between the two nearest ranks."""
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _value(metadata: dict, *names: str) -> int | float | None:
    for name in names:
        if name in metadata and isinstance(metadata[name].value, int | float):
            return metadata[name].value
    return None


class PlatformCollector(Collector):
    """Collects the platform's metrics from `instance` at each scrape.

    `checks`: every check key of the code location, with whether it is partitioned (a range
    run's whole-range evaluation of a partitioned check is not a partition of its own).
    """

    def __init__(
        self,
        instance: dg.DagsterInstance,
        sources: list[SourceAssets],
        checks: dict[dg.AssetCheckKey, bool],
        clock: Callable[[], float] = time.time,
    ):
        self.instance, self.sources, self.checks, self.clock = instance, sources, checks, clock
        # What was read once and cannot change, kept for the next scrape (only what is still current):
        self._clean_figures: dict[dg.AssetKey, dict[int, tuple[int, int]]] = {}  # storage id -> (accepted, quarantined)
        self._severities: dict[int, str] = {}  # failed check's event storage id -> severity
        self._run_assets: dict[str, list[str]] = {}  # ended run id -> its assets
        # The HTTP server answers each scrape in its own thread; the caches are not shared safely.
        self._lock = threading.Lock()

    def describe(self) -> list:
        return []  # nothing to collect at registration time (that would read the instance)

    def collect(self) -> Iterator:
        with self._lock:
            started = time.perf_counter()
            latest_raw = yield from self._rows()
            yield from self._runs()
            yield from self._checks()
            yield from self._freshness(latest_raw)
            yield from self._stream_lag()
            yield from self._audits()
            elapsed = GaugeMetricFamily(
                "ml_platform_scrape_duration_seconds", "Time taken to collect the platform's metrics"
            )
            elapsed.add_metric([], time.perf_counter() - started)
            yield elapsed

    # --- rows -----------------------------------------------------------------------------------

    def _rows(self) -> Iterator:
        ingested = GaugeMetricFamily(
            "ml_platform_rows_ingested",
            "Rows in the source's raw table (its latest raw materialization)",
            labels=["source"],
        )
        accepted = GaugeMetricFamily(
            "ml_platform_rows_accepted",
            "Rows the source's clean table holds (per partition, latest write)",
            labels=["source"],
        )
        quarantined = GaugeMetricFamily(
            "ml_platform_rows_quarantined",
            "Rows of the source in quarantine (per partition, latest write)",
            labels=["source"],
        )
        keys = [dg.AssetKey(s.raw) for s in self.sources] + [
            dg.AssetKey(s.clean) for s in self.sources if not s.partitioned
        ]
        latest = {
            r.asset_entry.asset_key.to_user_string(): r.asset_entry.last_materialization
            for r in self.instance.get_asset_records(keys)
        }
        for source in self.sources:
            raw = latest.get(source.raw)
            rows = _value(raw.asset_materialization.metadata, "dagster/row_count") if raw else None
            ingested.add_metric([source.name], rows or 0)
            if source.partitioned:
                figures = self._partition_figures(dg.AssetKey(source.clean))
            else:
                clean = latest.get(source.clean)
                figures = [self._figures(clean.asset_materialization.metadata)] if clean else []
            accepted.add_metric([source.name], sum(a for a, _ in figures))
            quarantined.add_metric([source.name], sum(q for _, q in figures))
        yield from (ingested, accepted, quarantined)
        return {s.name: latest.get(s.raw) for s in self.sources}

    @staticmethod
    def _figures(metadata: dict) -> tuple[int, int]:
        """(accepted, quarantined) of one clean materialization: a range run gives each partition
        its own figures as `partition_*` beside the run's totals."""
        return (
            _value(metadata, "partition_accepted", "accepted_rows") or 0,
            _value(metadata, "partition_quarantined", "quarantined") or 0,
        )

    def _partition_figures(self, key: dg.AssetKey) -> list[tuple[int, int]]:
        """Each partition's figures at its latest materialization (only new ones are read)."""
        latest = self.instance.event_log_storage.get_latest_storage_id_by_partition(
            key, dg.DagsterEventType.ASSET_MATERIALIZATION
        )
        known = self._clean_figures.get(key, {})
        figures = {sid: known[sid] for sid in latest.values() if sid in known}
        unknown = [sid for sid in latest.values() if sid not in known]
        if unknown:
            for record in self.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, storage_ids=unknown), limit=len(unknown)
            ).records:
                figures[record.storage_id] = self._figures(record.asset_materialization.metadata)
        self._clean_figures[key] = figures  # partitions written again drop out
        return list(figures.values())

    # --- runs -----------------------------------------------------------------------------------

    def _runs(self) -> Iterator:
        runs = GaugeMetricFamily("ml_platform_runs", "Runs in the Dagster instance, by status", labels=["status"])
        for status in dg.DagsterRunStatus:
            runs.add_metric([status.value], self.instance.get_runs_count(dg.RunsFilter(statuses=[status])))
        yield runs
        records = [
            r
            for r in self.instance.get_run_records(dg.RunsFilter(statuses=ENDED), limit=RECENT_RUNS)
            if r.start_time is not None and r.end_time is not None
        ]
        durations = sorted(r.end_time - r.start_time for r in records)
        recent = GaugeMetricFamily(
            "ml_platform_recent_run_duration_seconds",
            f"Quantiles of the durations of the last {RECENT_RUNS} ended runs",
            labels=["quantile"],
        )
        if durations:
            for q in QUANTILES:
                recent.add_metric([f"{q:g}"], quantile(durations, q))
        yield recent
        duration = GaugeMetricFamily(
            "ml_platform_last_run_duration_seconds",
            "Duration of the latest ended run targeting the asset",
            labels=["asset"],
        )
        failed = GaugeMetricFamily(
            "ml_platform_last_run_failed", "1 when the latest ended run targeting the asset failed", labels=["asset"]
        )
        known, self._run_assets = self._run_assets, {}  # only the recent runs' are kept
        seen = set()
        for record in records:  # newest first
            for asset in self._assets_of(record.dagster_run, known):
                if asset not in seen:
                    seen.add(asset)
                    duration.add_metric([asset], record.end_time - record.start_time)
                    failed.add_metric([asset], int(record.dagster_run.status == dg.DagsterRunStatus.FAILURE))
        yield from (duration, failed)

    def _assets_of(self, run: dg.DagsterRun, known: dict[str, list[str]]) -> list[str]:
        """The run's assets; an ended run's never change, so each run's are read once."""
        assets = known[run.run_id] if run.run_id in known else run_assets(self.instance, run)
        self._run_assets[run.run_id] = assets
        return assets

    # --- checks ---------------------------------------------------------------------------------

    def _checks(self) -> Iterator:
        failing = GaugeMetricFamily(
            "ml_platform_failing_checks",
            "Partitions whose latest evaluation of the check failed at that severity",
            labels=["asset", "check", "severity"],
        )
        counts = {(key, severity): 0 for key in self.checks for severity in ("ERROR", "WARN")}
        known, self._severities = self._severities, {}
        for info in self.instance.event_log_storage.get_asset_check_partition_info(list(self.checks)):
            if info.latest_execution_status != FAILED:  # PLANNED (running) or SUCCEEDED
                continue
            if info.partition_key is None and self.checks[info.check_key]:
                continue  # a range run's roll-up of its partitions
            sid = info.latest_check_event_storage_id
            self._severities[sid] = known[sid] if sid in known else self._severity(info)
            counts[(info.check_key, self._severities[sid])] += 1
        for (key, severity), n in sorted(counts.items(), key=lambda kv: (kv[0][0].to_user_string(), kv[0][1])):
            failing.add_metric([key.asset_key.to_user_string(), key.name, severity], n)
        yield failing

    def _severity(self, info) -> str:
        """The severity of the partition's latest failed evaluation (a run may be planning the
        next one meanwhile, hence the status filter)."""
        [record] = self.instance.event_log_storage.get_asset_check_execution_history(
            info.check_key, limit=1, status={FAILED}, partition_filter=PartitionKeyFilter(key=info.partition_key)
        )
        return record.event.dagster_event.asset_check_evaluation_data.severity.value

    # --- freshness -----------------------------------------------------------------------------

    def _freshness(self, latest_raw: dict) -> Iterator:
        ingested = GaugeMetricFamily(
            "ml_platform_last_ingestion_timestamp_seconds",
            "When the source's raw table was last written (Unix time)",
            labels=["source"],
        )
        landed = GaugeMetricFamily(
            "ml_platform_last_landed_timestamp_seconds",
            "When the source's newest data landed, as its landing_freshness check last saw it (Unix time)",
            labels=["source"],
        )
        lag = GaugeMetricFamily(
            "ml_platform_freshness_lag_seconds",
            "Seconds since the source's newest data landed (before its landing check ran: since its last ingestion)",
            labels=["source"],
        )
        now = self.clock()
        landings = self._landed_at()
        for source in self.sources:
            raw = latest_raw.get(source.name)
            if raw is not None:
                ingested.add_metric([source.name], raw.timestamp)
            newest = landings.get(source.name)
            if newest is not None:
                landed.add_metric([source.name], newest)
            since = newest if newest is not None else (raw.timestamp if raw is not None else None)
            if since is not None:
                lag.add_metric([source.name], max(0.0, now - since))
        yield from (ingested, landed, lag)

    # --- stream lag ----------------------------------------------------------------------------

    def _stream_lag(self) -> Iterator:
        lag = GaugeMetricFamily(
            "ml_platform_stream_lag_messages",
            "Messages of the source's topic partition not yet in raw, as its lag sensor last observed",
            labels=["source", "partition"],
        )
        observed = GaugeMetricFamily(
            "ml_platform_stream_lag_observed_timestamp_seconds",
            "When the source's lag was last observed (Unix time)",
            labels=["source"],
        )
        for source in self.sources:
            if not source.streaming:
                continue
            records = self.instance.fetch_observations(dg.AssetKey(source.raw), limit=1).records
            if not records:
                continue
            record = records[0]
            for name, entry in sorted(record.asset_observation.metadata.items()):
                if name.startswith(STREAM_LAG_PARTITION) and isinstance(entry.value, int | float):
                    lag.add_metric([source.name, name.removeprefix(STREAM_LAG_PARTITION)], entry.value)
            observed.add_metric([source.name], record.timestamp)
        yield from (lag, observed)

    def _landed_at(self) -> dict[str, float]:
        """Each source's `landed_at` from its landing check's latest completed evaluation."""
        keys = {dg.AssetCheckKey(dg.AssetKey(s.raw), LANDING_FRESHNESS_CHECK): s.name for s in self.sources}
        found = {}
        for key, summary in self.instance.event_log_storage.get_asset_check_summary_records(list(keys)).items():
            record = summary.last_completed_check_execution_record
            if record is None or record.event is None:
                continue
            value = _value(record.event.dagster_event.asset_check_evaluation_data.metadata, "landed_at")
            if value is not None:
                found[keys[key]] = float(value)
        return found

    # --- consistency audit -------------------------------------------------------------------

    def _audits(self) -> Iterator:
        checked = GaugeMetricFamily(
            "ml_platform_audit_partitions_checked",
            "Partitions the latest consistency audit recomputed from their inputs",
            labels=["asset"],
        )
        differing = GaugeMetricFamily(
            "ml_platform_audit_partitions_differing",
            "Partitions whose warehouse rows differ from their recomputation, at the latest audit",
            labels=["asset"],
        )
        when = GaugeMetricFamily(
            "ml_platform_audit_timestamp_seconds", "When the latest consistency audit ran (Unix time)", labels=["asset"]
        )
        keys = [key for key in self.checks if key.name == AUDIT_CHECK]
        summaries = self.instance.event_log_storage.get_asset_check_summary_records(keys) if keys else {}
        for key, summary in sorted(summaries.items(), key=lambda kv: kv[0].asset_key.to_user_string()):
            record = summary.last_completed_check_execution_record
            if record is None or record.event is None:
                continue
            metadata = record.event.dagster_event.asset_check_evaluation_data.metadata
            asset = key.asset_key.to_user_string()
            checked.add_metric([asset], _value(metadata, CHECKED) or 0)
            differing.add_metric([asset], _value(metadata, DIFFERING) or 0)
            when.add_metric([asset], record.event.timestamp)
        yield from (checked, differing, when)
