"""The stream benchmark's figures, read from what the platform recorded: the Dagster instance and the warehouse.

Nothing here times the platform from outside; every moment is one the platform stored:

- a message was produced at its Kafka timestamp (`raw_stream_events.kafka_timestamp`, set by the
  producing client when it sent the message; milliseconds);
- it reached raw when the raw step of the run that read it recorded its materialization (the run
  is `stream_batches.run_id` of the batch the row belongs to; the rows were committed just before);
- its event reached the online values when the view row of its user and micro-batch became
  servable: the row's `created_at` (the online store's write time when one is configured, else
  the warehouse commit), per view; "event -> online" is the later of the two views.

Per micro-batch run (`runs`): the lag sensor's tick that requested it, its creation, dequeue,
start, the raw step's start, materialization and end, the views' steps, the run's end; the
`breakdown` is the median of each phase. Per second (`lag_timeline`): messages produced (the
producers' own counts) minus messages read into raw (each run's batches, counted at its raw
materialization), and the lag sensor's own observations (`lag/total`).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

import dagster as dg
import duckdb

STEP_RAW = "raw_stream_events"
VIEWS = ("user_activity_5m", "user_activity_1h")
SOURCE = "stream_events"
SOURCE_TAG = "ml_platform/stream_source"
TICK_TAG = "dagster/tick"
LAG_TOTAL = "lag/total"
PAGE = 10_000  # the most event records Dagster returns at once
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


@dataclass
class MicroBatchRun:
    run_id: str
    status: str
    tick: float | None  # the lag sensor's tick that requested it started
    created: float
    dequeued: float | None  # the queue handed it to the launcher (RUN_DEQUEUED, else RUN_STARTING)
    started: float | None  # RUN_START: the fork is up, the code location loaded
    raw_step_blocked: float | None  # the raw step found the warehouse pool's slot taken
    raw_step_started: float | None  # it holds the slot
    raw_materialized: float | None
    raw_step_ended: float | None
    views_materialized: dict[str, float]
    ended: float | None
    online_store: str | None  # what the view step says it published to

    def phases(self, previous_end: float | None) -> dict[str, float | None]:
        """Seconds spent in each phase; `sensor_wait` from the previous micro-batch run's end to this tick."""
        views_done = max(self.views_materialized.values()) if self.views_materialized else None

        def span(a, b):
            return None if a is None or b is None else b - a

        return {
            "sensor_wait": span(previous_end, self.tick),
            "tick_to_created": span(self.tick, self.created),
            "queued": span(self.created, self.dequeued),
            "launch": span(self.dequeued, self.started),
            "to_raw_step": span(self.started, self.raw_step_blocked or self.raw_step_started),
            "raw_slot_wait": span(self.raw_step_blocked, self.raw_step_started) or 0.0,
            "raw_step_to_materialized": span(self.raw_step_started, self.raw_materialized),
            "raw_checks_to_step_end": span(self.raw_materialized, self.raw_step_ended),
            "view_steps_with_slot_waits": span(self.raw_step_ended, views_done),
            "run_end": span(views_done, self.ended),
            "tick_to_raw_materialized": span(self.tick, self.raw_materialized),
        }


def micro_batch_runs(instance: dg.DagsterInstance, ticks: list) -> list[MicroBatchRun]:
    """Every run the lag sensor requested, oldest first, from the runs' event logs."""
    tick_start = {t.tick_id: t.timestamp for t in ticks}
    records = instance.get_run_records(dg.RunsFilter(tags={SOURCE_TAG: SOURCE}))
    found = []
    for record in sorted(records, key=lambda r: r.create_timestamp.timestamp()):
        run = record.dagster_run
        first: dict[tuple, float] = {}
        views: dict[str, float] = {}
        store = None
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is None:
                continue
            first.setdefault((event.event_type_value, entry.step_key), entry.timestamp)
            if event.event_type_value == "ENGINE_EVENT" and "blocked by limit for pool" in (entry.user_message or ""):
                first.setdefault(("BLOCKED", entry.step_key), entry.timestamp)
            if event.event_type_value == "ASSET_MATERIALIZATION" and entry.step_key in VIEWS:
                views[entry.step_key] = entry.timestamp
                value = entry.asset_materialization.metadata.get("online_store")
                store = value.value if value is not None else store
        tick = run.tags.get(TICK_TAG)
        found.append(
            MicroBatchRun(
                run_id=run.run_id,
                status=run.status.value,
                tick=tick_start.get(int(tick)) if tick else None,
                created=record.create_timestamp.timestamp(),
                dequeued=first.get(("PIPELINE_DEQUEUED", None)) or first.get(("PIPELINE_STARTING", None)),
                started=first.get(("PIPELINE_START", None)),
                raw_step_blocked=first.get(("BLOCKED", STEP_RAW)),
                raw_step_started=first.get(("STEP_START", STEP_RAW)),
                raw_materialized=first.get(("ASSET_MATERIALIZATION", STEP_RAW)),
                raw_step_ended=first.get(("STEP_SUCCESS", STEP_RAW)),
                views_materialized=views,
                ended=first.get(("PIPELINE_SUCCESS", None)) or first.get(("PIPELINE_FAILURE", None)),
                online_store=store,
            )
        )
    return found


def other_runs(instance: dg.DagsterInstance) -> list[dict]:
    """Runs the micro-batches did not request (the automation sensor's, e.g. clean_stream_events):
    they compete for the warehouse slot."""
    runs = []
    for record in instance.get_run_records(dg.RunsFilter()):
        run = record.dagster_run
        if run.tags.get(SOURCE_TAG) == SOURCE:
            continue
        runs.append(
            {
                "run_id": run.run_id,
                "status": run.status.value,
                "assets": sorted(k.to_user_string() for k in run.asset_selection or ()),
                "created": record.create_timestamp.timestamp(),
                "started": record.start_time,
                "ended": record.end_time,
            }
        )
    return sorted(runs, key=lambda r: r["created"])


def lag_observations(instance: dg.DagsterInstance, raw_key: dg.AssetKey) -> list[tuple[float, int]]:
    """(time, total lag) of every lag observation the sensor recorded, oldest first."""
    found, cursor = [], None
    while True:
        result = instance.fetch_observations(raw_key, limit=PAGE, cursor=cursor, ascending=True)
        for record in result.records:
            value = record.asset_observation.metadata.get(LAG_TOTAL) if record.asset_observation else None
            if value is not None:
                found.append((record.timestamp, int(value.value)))
        if not result.has_more:
            return found
        cursor = result.cursor


def latest_lag(instance: dg.DagsterInstance, raw_key: dg.AssetKey) -> int | None:
    """The total lag the sensor observed last."""
    records = instance.fetch_observations(raw_key, limit=1).records
    value = records[0].asset_observation.metadata.get(LAG_TOTAL) if records else None
    return None if value is None else int(value.value)


def in_flight(instance: dg.DagsterInstance) -> int:
    """Micro-batch runs not finished yet."""
    records = instance.get_run_records(dg.RunsFilter(tags={SOURCE_TAG: SOURCE}), limit=5)
    return sum(r.dagster_run.status not in FINISHED for r in records)


def _quantiles(con: duckdb.DuckDBPyConnection, relation: str, column: str, where: str) -> dict:
    count, p50, p90, p99, worst = con.execute(
        f"""SELECT count({column}), quantile_cont({column}, 0.5), quantile_cont({column}, 0.9),
                   quantile_cont({column}, 0.99), max({column})
            FROM {relation} WHERE {where}"""
    ).fetchone()
    return {"messages": count} | {
        k: None if v is None else round(v, 3) for k, v in (("p50", p50), ("p90", p90), ("p99", p99), ("max", worst))
    }


def message_latencies(warehouse, runs: list[MicroBatchRun], measured_from: float, measured_to: float) -> dict:
    """produce -> raw and event -> online per message produced in [measured_from, measured_to]."""
    from ml_platform import privacy
    from ml_platform.warehouse import sql

    done = [(r.run_id, r.raw_materialized, r.raw_step_started) for r in runs if r.raw_materialized is not None]
    if not done or not warehouse.exists():
        return {"messages_in_raw": 0, "_committed_by_run": {}}  # no micro-batch committed anything
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        # Tables, or the warehouse's views of lake tables.
        tables = {
            row[0]
            for row in con.execute(
                "SELECT table_name FROM duckdb_tables() UNION SELECT view_name FROM duckdb_views() WHERE NOT internal"
            ).fetchall()
        }
        con.execute("CREATE TEMP TABLE _runs (run_id VARCHAR, raw_done DOUBLE, raw_step_started DOUBLE)")
        con.executemany("INSERT INTO _runs VALUES (?, ?, ?)", done)
        privacy.bind_key(con)
        con.execute(
            f"""CREATE TEMP TABLE _messages AS
            SELECT epoch_ms(r.kafka_timestamp) / 1000.0 AS produced, u.raw_done, u.raw_step_started,
                   r.ingested_at, {sql.pseudonym("r.record->>'user_id'")} AS user_key
            FROM raw_stream_events r
            JOIN stream_batches b ON b.source = '{SOURCE}' AND b.status = 'read'
              AND b.landing_date = r.landing_date AND b.source_file = r.source_file
            JOIN _runs u ON u.run_id = b.run_id"""
        )
        for view in VIEWS:
            con.execute(f"ALTER TABLE _messages ADD COLUMN {view} DOUBLE")
            if view in tables:  # none when the run was stopped before the view's first step
                con.execute(
                    f"""UPDATE _messages m SET {view} = epoch_us(v.created_at) / 1e6
                    FROM {view} v WHERE v.batch_ingested_at = m.ingested_at AND v.user_id = m.user_key"""
                )
        # When both views' values were servable (NULL when one has no row for the message's user).
        both_views = (
            f"CASE WHEN {' OR '.join(f'{v} IS NULL' for v in VIEWS)} THEN NULL ELSE greatest({', '.join(VIEWS)}) END"
        )
        window = f"produced >= {measured_from} AND produced <= {measured_to}"
        con.execute(
            f"""CREATE TEMP VIEW _latency AS SELECT produced,
                  raw_done - produced AS produce_to_raw,
                  raw_step_started - produced AS produce_to_raw_step_start,
                  raw_done - raw_step_started AS raw_step_start_to_raw,
                  {", ".join(f"{v} - produced AS event_to_{v}" for v in VIEWS)},
                  {both_views} - produced AS event_to_online,
                  {both_views} - raw_done AS raw_to_online
                FROM _messages"""
        )
        columns = ["produce_to_raw", "produce_to_raw_step_start", "raw_step_start_to_raw", "event_to_online"]
        columns += [f"event_to_{v}" for v in VIEWS] + ["raw_to_online"]
        figures = {c: _quantiles(con, "_latency", c, window) for c in columns}
        figures["messages_in_raw"] = con.execute("SELECT count(*) FROM raw_stream_events").fetchone()[0]
        figures["messages_rejected"] = con.execute("SELECT count(*) FROM rejected_messages").fetchone()[0]
        figures["view_rows"] = {v: con.execute(f"SELECT count(*) FROM {v}").fetchone()[0] for v in VIEWS if v in tables}
        committed = con.execute(
            """SELECT b.run_id, sum(b.messages) FROM stream_batches b
               WHERE b.source = ? AND b.status = 'read' GROUP BY ALL""",
            [SOURCE],
        ).fetchall()
        figures["_committed_by_run"] = dict(committed)
        return figures
    finally:
        con.close()


def lag_timeline(
    produced_per_second: dict[int, int], runs: list[MicroBatchRun], committed_by_run: dict[str, int], until: float
) -> list[tuple[int, int]]:
    """(second, messages produced but not yet in raw) from the first second produced to `until`."""
    if not produced_per_second:
        return []
    read_at: dict[int, int] = {}
    for run in runs:
        if run.raw_materialized is not None and run.run_id in committed_by_run:
            second = int(run.raw_materialized)
            read_at[second] = read_at.get(second, 0) + int(committed_by_run[run.run_id])
    first = min(produced_per_second)
    produced = read = 0
    timeline = []
    for second in range(first, int(until) + 1):
        produced += produced_per_second.get(second, 0)
        read += read_at.get(second, 0)
        timeline.append((second, produced - read))
    return timeline


def boundedness(timeline: list[tuple[int, int]], production: tuple[float, float], rate: float, drain_s) -> dict:
    """Whether the lag stayed bounded: its peak in the last third of production at most 1.5x the
    middle third's (plus a second of production as slack), and drained after production stopped."""
    start, end = production
    third = (end - start) / 3

    def peak(a, b):
        return max((lag for t, lag in timeline if a <= t < b), default=0)

    middle, last = peak(start + third, start + 2 * third), peak(start + 2 * third, end)
    growing = last > 1.5 * middle + rate
    return {
        "peak_lag_middle_third": middle,
        "peak_lag_last_third": last,
        "peak_lag": max((lag for _, lag in timeline), default=0),
        "lag_growing": growing,
        "drain_s": drain_s,
        "bounded": not growing and drain_s is not None,
    }


def breakdown(runs: list[MicroBatchRun], measured_from: float, until: float) -> dict:
    """Median (and max) of each phase over the micro-batch runs that read measured messages: raw step
    started after the warm-up, requested before the drain ended."""
    rows, ticks = [], []
    previous_end = None
    for run in runs:
        phases = run.phases(previous_end)
        previous_end = run.ended or previous_end
        if run.raw_step_started and run.raw_step_started >= measured_from and run.tick and run.tick <= until:
            rows.append(phases)
            ticks.append(run.tick)
    cycle = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    result = {"runs": len(rows)}
    for name in rows[0] if rows else {}:
        values = [r[name] for r in rows if r[name] is not None]
        result[name] = {
            "median": round(statistics.median(values), 3) if values else None,
            "max": round(max(values), 3) if values else None,
        }
    result["cycle_s_median"] = round(statistics.median(cycle), 2) if cycle else None
    return result


def runs_as_dicts(runs: list[MicroBatchRun]) -> list[dict]:
    return [asdict(r) for r in runs]
