"""The Kafka source kind against a real broker: exactly once into raw, poison, retention loss,
deleted topics, an unreachable broker, added partitions, re-runs, the lag sensor and its metrics,
and the demo producer's mix through raw and clean.

Every test has a topic of its own on the process's broker (`kafka_server.shared_broker`) and
its own warehouse; counts are exact.
"""

from __future__ import annotations

import datetime as dt
import json
import time

import dagster as dg
import duckdb
import ibis.expr.datatypes as ibis_dt
import pandas as pd
import pytest
from pandera.ibis import DataFrameModel, Field
from prometheus_client.core import GaugeMetricFamily

from conftest import Runner
from helpers import run_check, run_metadata
from kafka_server import (
    add_partitions,
    delete_records,
    delete_topic,
    new_topic,
    produce,
    shared_broker,
    stream_defs,
    stream_runner,
    stream_spec,
    watermarks,
)
from ml_platform.contracts import personal
from ml_platform.contracts.lineage import UtcTimestamp
from ml_platform.curated import FeatureView
from ml_platform.demo.kafka_broker import free_port
from ml_platform.ingestion.kafka import KafkaSourceSpec
from ml_platform.ingestion.kafka import assets as kafka_assets
from ml_platform.monitoring.metrics import PlatformCollector, SourceAssets

RAW, CLEAN, SENSOR = "raw_stream_events", "clean_stream_events", "stream_events_lag_sensor"
ENV = "ML_PLATFORM_KAFKA_BOOTSTRAP_SERVERS"


@pytest.fixture(scope="module")
def broker():
    return shared_broker()


@pytest.fixture
def bootstrap(broker, monkeypatch, data_dir) -> str:
    monkeypatch.setenv(ENV, broker.bootstrap)
    _clear_of_midnight()
    return broker.bootstrap


def _clear_of_midnight() -> None:
    """A run's landing day is the day it reads: a test that straddled midnight UTC would see its
    second run land on another day than it asked for. Wait out the last seconds of a day."""
    now = dt.datetime.now(dt.UTC)
    left = (dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), dt.UTC) - now).total_seconds()
    if left < 60:
        time.sleep(left + 1)


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def yesterday() -> str:
    return (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()


def event(i: int, **changes) -> dict:
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return {
        "event_id": f"e{i}",
        "user_id": f"U{i % 7:05d}",
        "event_type": "purchase" if i % 5 == 0 else "page_view",
        "event_time": at.isoformat(),
        "product_id": "P0001" if i % 5 == 0 else None,
        "amount": 12.5 if i % 5 == 0 else None,
        "device_type": "mobile",
        "session_id": f"s{i % 3}",
        **changes,
    }


def events(first: int, count: int) -> list[dict]:
    return [event(i) for i in range(first, first + count)]


def query(runner, text: str) -> list[tuple]:
    return runner.query(text)


def warehouse_state(runner) -> dict[str, list]:
    """Every row of every table, sorted: equal states are identical warehouses."""
    con = duckdb.connect(str(runner.data_dir / "warehouse.duckdb"), read_only=True)
    try:
        tables = [t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        return {t: sorted(map(repr, con.execute(f'SELECT * FROM "{t}"').fetchall())) for t in tables}
    finally:
        con.close()


def offsets(runner) -> dict[int, int]:
    return dict(query(runner, "SELECT partition, next_offset FROM stream_offsets ORDER BY 1"))


def failure_messages(result) -> list[str]:
    """What each failed step said: a `dg.Failure`'s description, or the error's message."""
    found = []
    for event_ in result.get_step_failure_events():
        data = event_.step_failure_data
        found.append(data.user_failure_data.description if data.user_failure_data else data.error.message)
    return found


# --- the spec ------------------------------------------------------------------------------------


def test_spec_validation():
    spec = stream_spec("clicks")
    assert (spec.topic, spec.bootstrap_servers_env, spec.resource_key) == ("clicks", ENV, "stream_events_kafka")
    for changes, words in (
        ({"bootstrap_servers_env": "lower"}, "not an environment variable name"),
        ({"value_format": "avro"}, "value_format must be one of"),
        ({"max_message_bytes": 0}, "max_message_bytes must be positive"),
        ({"read_timeout_seconds": 0}, "must be positive"),
    ):
        with pytest.raises(ValueError, match=words):
            stream_spec("clicks", **changes)
    with pytest.raises(ValueError, match="not a Kafka topic name"):
        stream_spec("bad topic")
    with pytest.raises(ValueError, match="needs event_time_column"):
        KafkaSourceSpec(
            name="x", description="x", owner="team:x", contract=spec.contract, key_columns=("event_id",), topic="x"
        )


# --- exactly once, poison ---------------------------------------------------------------------


def test_each_message_lands_once_poison_is_recorded_and_offsets_are_stored(bootstrap, instance, data_dir):
    topic = new_topic(bootstrap, partitions=2)
    runner = stream_runner(stream_spec(topic, max_message_bytes=2000), instance, data_dir)
    produce(bootstrap, topic, events(0, 20), partition=0, key="U1")
    poison = [
        b"not json",
        b"[1, 2]",
        {"event_id": "p3", "event_time": "yesterday"},
        {"event_id": "p4", "user_id": "U1"},
        b"\xff\xfe",
        None,
        {"event_id": "p7", "pad": "x" * 3000},
    ]
    produce(bootstrap, topic, [*events(100, 10), *poison], partition=1)

    result = runner.run(RAW, partition=today())
    meta = run_metadata(result, RAW)
    assert (meta["messages_read"], meta["rows_ingested"], meta["messages_rejected"], meta["offsets_lost"]) == (
        37,
        30,
        7,
        0,
    )
    assert meta["stream_offsets"] == {"0": 20, "1": 17}
    assert meta["read_ranges"] == [
        {"landing_date": today(), "partition": 0, "first": 0, "last": 19},
        {"landing_date": today(), "partition": 1, "first": 0, "last": 16},
    ]
    assert query(runner, "SELECT count(*), count(DISTINCT (kafka_partition, kafka_offset)) FROM raw_stream_events") == [
        (30, 30)
    ]
    # Lineage: where each row came from in the topic; the batch is the partition's offset range.
    assert query(
        runner,
        f"""SELECT kafka_topic = '{topic}', kafka_partition, min(kafka_offset), max(kafka_offset), count(*),
                   count(kafka_timestamp), count(kafka_key), min(source_file), min(source_row), max(source_row),
                   any_value(landing_date)::VARCHAR
            FROM raw_stream_events GROUP BY ALL ORDER BY 2""",
    ) == [
        (True, 0, 0, 19, 20, 20, 20, f"kafka:{topic}/0/0-19", 1, 20, today()),
        (True, 1, 0, 9, 10, 10, 0, f"kafka:{topic}/1/0-16", 1, 10, today()),
    ]
    assert query(runner, "SELECT DISTINCT kafka_key FROM raw_stream_events WHERE kafka_partition = 0") == [("U1",)]
    sizes = [len(json.dumps(p).encode()) if isinstance(p, dict) else len(p or b"") for p in poison]
    oversize = f"over the size limit: {sizes[6]} bytes > 2000"
    assert query(runner, 'SELECT partition, "offset", reason, size_bytes FROM rejected_messages ORDER BY 2') == [
        (1, 10 + i, reason, sizes[i])
        for i, reason in enumerate(
            [
                "not JSON",
                "not a JSON object: array",
                "event time unreadable (event_time): yesterday",
                "no event time (event_time)",
                "not UTF-8 text",
                "no value (a tombstone)",
                oversize,
            ]
        )
    ]
    assert offsets(runner) == {0: 20, 1: 17}
    assert query(
        runner, "SELECT source_file, row_count, rows_rejected, status, schema_version FROM ingest_ledger ORDER BY 1"
    ) == [
        (f"kafka:{topic}/0/0-19", 20, 0, "ingested", "v1"),
        (f"kafka:{topic}/1/0-16", 10, 7, "partly_read", "v1"),
    ]
    check = run_check(result, RAW, "messages")
    assert (check.passed, check.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert check.description == (
        "7 message(s) rejected (event time unreadable (event_time): 1, no event time (event_time): 1, no value (a"
        f" tombstone): 1, not JSON: 1, not UTF-8 text: 1, not a JSON object: array: 1, {oversize}: 1);"
        " see rejected_messages"
    )
    assert run_check(result, RAW, "schema").passed

    # Nothing new: the run reads nothing and changes nothing.
    before = warehouse_state(runner)
    assert run_metadata(runner.run(RAW, partition=today()), RAW)["messages_read"] == 0
    after = warehouse_state(runner)
    assert {t: after[t] for t in after if t != "ingest_ledger"} == {
        t: before[t] for t in before if t != "ingest_ledger"
    }

    # New messages: only they are appended, from the stored offsets on.
    produce(bootstrap, topic, events(200, 5), partition=0)
    meta = run_metadata(runner.run(RAW, partition=today()), RAW)
    assert (meta["messages_read"], meta["rows_ingested"], meta["stream_offsets"]) == (5, 5, {"0": 25, "1": 17})
    assert query(runner, "SELECT count(*), count(DISTINCT (kafka_partition, kafka_offset)) FROM raw_stream_events") == [
        (35, 35)
    ]
    assert query(runner, "SELECT partition, first_offset, end_offset, status FROM stream_batches ORDER BY 1, 2") == [
        (0, 0, 20, "read"),
        (0, 20, 25, "read"),
        (1, 0, 17, "read"),
    ]

    # The shared clean layer takes the stream's rows as they are: typed, deduplicated, in UTC.
    runner.run(CLEAN, range_=(yesterday(), today()))
    assert query(runner, "SELECT count(*), count(DISTINCT event_id) FROM clean_stream_events") == [(35, 35)]
    assert query(runner, "SELECT count(*) FROM quarantine_stream_events") == [(0,)]


def test_a_rerun_of_an_earlier_day_reads_exactly_its_ranges_again(bootstrap, instance, data_dir, monkeypatch):
    topic = new_topic(bootstrap, partitions=1)
    runner = stream_runner(stream_spec(topic), instance, data_dir)
    produce(bootstrap, topic, [*events(0, 10), "oops", *events(10, 2)])
    # The first batch is read "yesterday": the run's clock says so.
    noon = dt.datetime.combine(dt.date.fromisoformat(yesterday()), dt.time(12))
    with monkeypatch.context() as m:
        m.setattr(kafka_assets, "ingestion_time", lambda: noon)
        runner.run(RAW, partition=yesterday())
    produce(bootstrap, topic, events(50, 5))
    runner.run(RAW, partition=today())
    assert query(runner, "SELECT landing_date::VARCHAR, count(*) FROM raw_stream_events GROUP BY 1 ORDER BY 1") == [
        (yesterday(), 12),
        (today(), 5),
    ]
    before = warehouse_state(runner)

    # Re-run of yesterday: its range (offsets 0-12) read again, byte for byte the same warehouse.
    result = runner.run(RAW, partition=yesterday())
    meta = run_metadata(result, RAW)
    assert (meta["mode"], meta["messages_read"], meta["rows_ingested"], meta["messages_rejected"]) == (
        "re-read",
        13,
        12,
        1,
    )
    assert meta["read_ranges"] == [{"landing_date": yesterday(), "partition": 0, "first": 0, "last": 12}]
    assert warehouse_state(runner) == before

    # Retention deletes part of yesterday's range: the re-run refuses, and the day stays as it was.
    delete_records(bootstrap, topic, 0, 3)
    result = runner.run(RAW, partition=yesterday(), expect_success=False)
    assert any(
        f"kafka:{topic}/0/0-12 of landing day {yesterday()} cannot be read again: the log now starts at 3" in m
        and f"Raw {yesterday()} is kept as it was" in m
        for m in failure_messages(result)
    ), failure_messages(result)
    assert warehouse_state(runner) == before


def test_offsets_deleted_before_they_were_read_turn_the_check_error(bootstrap, instance, data_dir):
    # Small segments and retention, as a topic that keeps little would have; the deletion itself is
    # done with delete-records, so the lost offsets are exact.
    topic = new_topic(bootstrap, partitions=2, config={"segment.bytes": "1048576", "retention.bytes": "1048576"})
    runner = stream_runner(stream_spec(topic), instance, data_dir)
    produce(bootstrap, topic, events(0, 10), partition=0)
    produce(bootstrap, topic, events(100, 10), partition=1)
    runner.run(RAW, partition=today())
    produce(bootstrap, topic, events(10, 10), partition=0)
    produce(bootstrap, topic, events(110, 10), partition=1)
    # Partition 0 loses offsets 10-14, never read; partition 1 loses 0-2, read already.
    delete_records(bootstrap, topic, 0, 15)
    delete_records(bootstrap, topic, 1, 3)

    result = runner.run(RAW, partition=today())
    meta = run_metadata(result, RAW)
    assert (meta["messages_read"], meta["offsets_lost"], meta["stream_offsets"]) == (15, 5, {"0": 20, "1": 20})
    check = run_check(result, RAW, "messages")
    assert (check.passed, check.severity) == (False, dg.AssetCheckSeverity.ERROR)
    assert (
        check.description == f"5 offset(s) deleted by retention before they were read (5 in partition {topic}/0): lost"
    )
    assert check.metadata["lost_by_partition"].value == {f"{topic}/0": 5}
    assert check.metadata["lost_ranges"].value == [{"partition": f"{topic}/0", "first_offset": 10, "last_offset": 14}]
    assert query(runner, "SELECT kafka_partition, count(*) FROM raw_stream_events GROUP BY 1 ORDER BY 1") == [
        (0, 15),
        (1, 20),
    ]
    assert sorted(
        o for (o,) in query(runner, "SELECT kafka_offset FROM raw_stream_events WHERE kafka_partition = 0")
    ) == [
        *range(10),
        *range(15, 20),
    ]
    # The day stays ERROR on later runs: the loss is recorded with it.
    produce(bootstrap, topic, events(300, 1), partition=1)
    later = runner.run(RAW, partition=today())
    assert run_check(later, RAW, "messages").severity == dg.AssetCheckSeverity.ERROR
    assert run_check(later, RAW, "messages").metadata["offsets_lost"].value == 5


def test_a_deleted_topic_or_an_unreachable_broker_fails_the_run_and_writes_nothing(
    bootstrap, instance, data_dir, monkeypatch
):
    topic = new_topic(bootstrap, partitions=2)
    spec = stream_spec(topic, request_timeout_seconds=1.0)
    runner = stream_runner(spec, instance, data_dir)
    produce(bootstrap, topic, events(0, 3), partition=0)
    runner.run(RAW, partition=today())
    before = warehouse_state(runner)

    delete_topic(bootstrap, topic)
    _wait_until(lambda: topic not in _topics(bootstrap))
    result = runner.run(RAW, partition=today(), expect_success=False)
    assert any(f"topic {topic} does not exist at {bootstrap}" in m for m in failure_messages(result))
    assert warehouse_state(runner) == before

    # Created again under the same name: its offsets start over, below what the warehouse has read.
    new_topic(bootstrap, partitions=2, name=topic)
    produce(bootstrap, topic, events(10, 1), partition=0)
    result = runner.run(RAW, partition=today(), expect_success=False)
    assert any(
        "partition 0 ends at offset 1, but the warehouse has read up to 3: the topic was deleted and created again" in m
        for m in failure_messages(result)
    ), failure_messages(result)
    assert warehouse_state(runner) == before

    nobody = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv(ENV, nobody)
    result = runner.run(RAW, partition=today(), expect_success=False)
    assert any(f"Kafka broker at {nobody} unreachable" in m for m in failure_messages(result)), failure_messages(result)
    assert warehouse_state(runner) == before
    tick = _tick(stream_defs(spec), instance)
    assert tick.skip_message.startswith(f"stream_events: Kafka broker at {nobody} unreachable")


def test_partitions_added_to_the_topic_are_read_from_their_first_offset(bootstrap, instance, data_dir):
    topic = new_topic(bootstrap, partitions=2)
    runner = stream_runner(stream_spec(topic), instance, data_dir)
    produce(bootstrap, topic, events(0, 4), partition=0)
    produce(bootstrap, topic, events(10, 3), partition=1)
    runner.run(RAW, partition=today())
    add_partitions(bootstrap, topic, 4)
    _wait_until(lambda: len(watermarks(bootstrap, topic)) == 4)
    for partition in range(4):
        produce(bootstrap, topic, events(100 + 10 * partition, partition + 1), partition=partition)
    meta = run_metadata(runner.run(RAW, partition=today()), RAW)
    assert meta["stream_offsets"] == {"0": 5, "1": 5, "2": 3, "3": 4}
    assert meta["messages_read"] == 1 + 2 + 3 + 4
    assert query(
        runner,
        "SELECT kafka_partition, count(*), count(DISTINCT kafka_offset) FROM raw_stream_events GROUP BY 1 ORDER BY 1",
    ) == [
        (0, 5, 5),
        (1, 5, 5),
        (2, 3, 3),
        (3, 4, 4),
    ]


# --- the shared layers -------------------------------------------------------------------------


class StreamUserEvents(DataFrameModel):
    user_id: ibis_dt.String = Field(nullable=False, description="Entity key.", metadata=personal.pseudonymized())
    as_of_date: ibis_dt.Date = Field(nullable=False, description="The day the row is as of: the partition.")
    as_of: UtcTimestamp = Field(description="The user's latest event that day.")
    created_at: UtcTimestamp = Field(description="When its events were read from the topic.")
    events_1d: ibis_dt.Int64 = Field(ge=1, description="Events that day.")

    class Config:
        strict = True


STREAM_VIEW = FeatureView(
    name="stream_user_events",
    description="Each user's events per UTC day, from the stream.",
    contract=StreamUserEvents,
    partition_column="as_of_date",
    reads=("clean_stream_events",),
    entity_columns=("user_id",),
    timestamp_column="as_of",
    ttl=dt.timedelta(days=1),
    sql="""
        SELECT user_id, event_date AS as_of_date, max(event_time) AS as_of, max(ingested_at) AS created_at,
               count(*) AS events_1d
        FROM clean_stream_events WHERE event_date BETWEEN $start AND $end
        GROUP BY user_id, event_date
    """,
)


def test_clean_automation_privacy_and_feature_views_take_the_stream_unchanged(bootstrap, instance, data_dir):
    from helpers import Ticker, pseudonym
    from ml_platform.checks.privacy import raw_personal_columns
    from ml_platform.curated.table import curated_asset
    from ml_platform.declarations.sources.stream_events import CleanStreamEvents
    from ml_platform.training import get_training_set

    topic = new_topic(bootstrap, partitions=2)
    spec = stream_spec(topic, clean_schedule=None)  # on every raw update, as a file source's clean
    side = stream_defs(spec)
    view = curated_asset(STREAM_VIEW, raw_personal=raw_personal_columns({CLEAN: CleanStreamEvents}))
    defs = dg.Definitions(assets=[*side.assets, view], resources=side.resources)
    runner = Runner(defs, instance, data_dir)
    ticker = Ticker(defs, instance)
    assert ticker.tick() == {}

    late = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).replace(microsecond=0).isoformat()
    produce(bootstrap, topic, [event(1, user_id="u1"), event(2, user_id="u1"), event(3, user_id="u2")])
    produce(bootstrap, topic, [event(4, user_id="u1", event_time=late), event(2, user_id="u1")])  # late; resent
    runner.run(RAW, partition=today())
    # Late-data automation as for files: a landing day updates the event days it can hold, and
    # what reads them.
    assert ticker.tick() == {
        dg.AssetKey(CLEAN): {yesterday(), today()},
        dg.AssetKey("stream_user_events"): {yesterday(), today()},
    }
    for day in (yesterday(), today()):
        runner.run(CLEAN, partition=day)
    assert query(runner, "SELECT event_date::VARCHAR, count(*) FROM clean_stream_events GROUP BY 1 ORDER BY 1") == [
        (yesterday(), 1),
        (today(), 3),
    ]
    result = runner.run("stream_user_events", partition=today())
    assert run_check(result, "stream_user_events", "privacy").passed
    assert query(runner, "SELECT user_id, events_1d FROM stream_user_events ORDER BY 2 DESC") == [
        (pseudonym("u1"), 2),
        (pseudonym("u2"), 1),
    ]
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        entities = pd.DataFrame(
            {"user_id": [pseudonym("u1")], "event_timestamp": [dt.datetime.now(dt.UTC).replace(tzinfo=None)]}
        )
        training = get_training_set(
            con, entities, ["stream_user_events:events_1d"], views={"stream_user_events": STREAM_VIEW}
        ).fetchall()
    finally:
        con.close()
    assert [row[-1] for row in training] == [2]


# --- the lag sensor and the metrics ----------------------------------------------------------


def _tick(defs, instance, cursor=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
    return defs.resolve_sensor_def(SENSOR).evaluate_tick(context)


def test_lag_sensor_requests_each_range_once_and_records_the_lag(bootstrap, instance, data_dir, monkeypatch):
    topic = new_topic(bootstrap, partitions=2)
    spec = stream_spec(topic)
    defs = stream_defs(spec)
    runner = stream_runner(spec, instance, data_dir)

    monkeypatch.delenv(ENV)
    assert _tick(defs, instance).skip_message == (
        f"stream_events: Kafka source not configured: environment variable {ENV} not set"
        " (`make dev` sets it when it starts the broker; docs/streaming.md)"
    )
    monkeypatch.setenv(ENV, bootstrap)
    tick = _tick(defs, instance)
    assert (tick.run_requests, tick.skip_message) == ([], f"stream_events: no lag on {topic}")

    produce(bootstrap, topic, events(0, 4), partition=0)
    produce(bootstrap, topic, events(10, 2), partition=1)
    tick = _tick(defs, instance)
    [request] = tick.run_requests
    assert request.run_key == f"stream_events:{today()}:{topic}:0=0-3,1=0-1"
    assert request.partition_key == today()
    assert request.tags["ml_platform/stream_ranges"] == "0=0-3,1=0-1"
    [observation] = tick.asset_events
    assert observation.partition == today()
    assert {k: v.value for k, v in observation.metadata.items()} == {
        "lag/partition_0": 4,
        "lag/partition_1": 2,
        "lag/total": 6,
    }
    # The same lag again: the same key (Dagster launches a key once), and no second observation.
    again = _tick(defs, instance, tick.cursor)
    assert [r.run_key for r in again.run_requests] == [request.run_key]
    assert again.asset_events == []

    # A run of the source in flight takes all the lag there is when it starts: nothing more is requested.
    running = instance.add_run(
        dg.DagsterRun(
            job_name="__ASSET_JOB", run_id="0" * 8 + "-running", status=dg.DagsterRunStatus.STARTED, tags=request.tags
        )
    )
    assert _tick(defs, instance).skip_message == "stream_events: run 00000000 is started; it reads the lag"
    instance.delete_run(running.run_id)

    # A failed run (the broker was away) gets its ranges requested once more.
    monkeypatch.setenv(ENV, f"127.0.0.1:{free_port()}")
    broken = stream_defs(stream_spec(topic, request_timeout_seconds=1.0))
    failed = dg.materialize(
        [broken.get_assets_def(RAW)],
        instance=instance,
        resources=broken.resources,
        partition_key=today(),
        tags=request.tags,
        raise_on_error=False,
    )
    assert not failed.success
    monkeypatch.setenv(ENV, bootstrap)
    [retry] = _tick(defs, instance).run_requests
    assert retry.run_key == f"{request.run_key}:retry-{failed.run_id[:8]}"
    # ... once: when the retry fails too, the sensor stops asking for those ranges and says so.
    monkeypatch.setenv(ENV, f"127.0.0.1:{free_port()}")
    failed_again = dg.materialize(
        [broken.get_assets_def(RAW)],
        instance=instance,
        resources=broken.resources,
        partition_key=today(),
        tags=retry.tags,
        raise_on_error=False,
    )
    monkeypatch.setenv(ENV, bootstrap)
    assert _tick(defs, instance).skip_message == (
        f"stream_events: the runs of offsets 0=0-3,1=0-1 failed twice (last: run {failed_again.run_id[:8]});"
        " not requested again until new messages arrive or a run is launched by hand"
    )

    # Once raw has read it, the lag is gone; new messages make a new range, from the stored offsets.
    runner.run(RAW, partition=today(), tags=request.tags)
    tick = _tick(defs, instance, tick.cursor)
    assert tick.skip_message == f"stream_events: no lag on {topic}"
    assert {k: v.value for k, v in tick.asset_events[0].metadata.items()}["lag/total"] == 0
    produce(bootstrap, topic, events(20, 3), partition=1)
    [later] = _tick(defs, instance, tick.cursor).run_requests
    assert later.run_key == f"stream_events:{today()}:{topic}:1=2-4"

    # The metrics endpoint serves the latest lag observation, per partition.
    tick = _tick(defs, instance, tick.cursor)
    for event_ in tick.asset_events:
        instance.report_runless_asset_event(event_)
    source = SourceAssets("stream_events", RAW, CLEAN, True, streaming=True)
    families = {
        f.name: f for f in PlatformCollector(instance, [source], {}).collect() if isinstance(f, GaugeMetricFamily)
    }
    assert {s.labels["partition"]: s.value for s in families["ml_platform_stream_lag_messages"].samples} == {
        "0": 0,
        "1": 3,
    }
    [observed] = families["ml_platform_stream_lag_observed_timestamp_seconds"].samples
    assert observed.labels == {"source": "stream_events"} and abs(observed.value - time.time()) < 60


# --- the demo producer ------------------------------------------------------------------------


def test_the_demo_producers_mix_reaches_raw_and_clean_exactly(bootstrap, instance, data_dir, capsys):
    from ml_platform.demo.__main__ import main

    topic = new_topic(bootstrap, partitions=3)
    runner = stream_runner(stream_spec(topic), instance, data_dir)
    assert main(["stream", "--rate", "5000", "--count", "800", "--seed", "3", "--topic", topic]) == 0
    sent = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert sent["messages"] == 800
    assert sent["unique_events"] + sent["duplicates"] + sent["poison"] == 800
    # The seed gives every kind of trouble a real producer makes.
    assert min(sent["duplicates"], sent["poison"], sent["late"], sent["out_of_order"]) >= 1, sent

    meta = run_metadata(runner.run(RAW, partition=today()), RAW)
    assert (meta["messages_read"], meta["rows_ingested"], meta["messages_rejected"]) == (
        800,
        800 - sent["poison"],
        sent["poison"],
    )
    # Late events reach the days they happened on: clean reads yesterday and today.
    clean = runner.run(CLEAN, range_=(yesterday(), today()))
    assert query(runner, "SELECT count(*), count(DISTINCT event_id) FROM clean_stream_events") == [
        (sent["unique_events"], sent["unique_events"])
    ]
    assert run_metadata(clean, CLEAN)["duplicates_removed"] == sent["duplicates"]
    assert run_metadata(clean, CLEAN)["quarantined"] == 0


def _topics(bootstrap: str) -> set[str]:
    from confluent_kafka.admin import AdminClient

    return set(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics)


def _wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_backlog_is_read_in_runs_of_bounded_size_each_message_once(bootstrap, instance, data_dir):
    topic = new_topic(bootstrap, partitions=1)
    runner = stream_runner(stream_spec(topic, max_messages_per_partition=3), instance, data_dir)
    produce(bootstrap, topic, events(0, 8))
    for expected in (3, 6, 8, 8):
        runner.run(RAW, partition=today())
        assert offsets(runner) == {0: expected}
    assert query(runner, "SELECT kafka_offset FROM raw_stream_events ORDER BY 1") == [(o,) for o in range(8)]
    assert query(runner, "SELECT first_offset, end_offset FROM stream_batches ORDER BY 1") == [(0, 3), (3, 6), (6, 8)]


def test_a_stream_sources_clean_day_is_built_at_once_then_at_most_once_between_two_schedule_ticks(
    bootstrap, instance, data_dir
):
    from helpers import Ticker

    now = dt.datetime.now(dt.UTC)
    window = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
    if window + dt.timedelta(minutes=11) >= dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), dt.UTC):
        pytest.skip("the ticks would cross midnight UTC")
    topic = new_topic(bootstrap, partitions=1)
    spec = stream_spec(topic)
    assert spec.clean_schedule == "*/5 * * * *"
    defs = stream_defs(spec)
    runner, ticker = Runner(defs, instance, data_dir), Ticker(defs, instance)

    def tick_at(minutes: float):
        ticker.now = window + dt.timedelta(minutes=minutes)
        return ticker.tick()

    assert tick_at(1) == {}
    produce(bootstrap, topic, events(0, 2))
    runner.run(RAW, partition=today())
    # Never built: built at once, without waiting for a tick of the schedule.
    assert tick_at(2) == {dg.AssetKey(CLEAN): {yesterday(), today()}}
    for day in (yesterday(), today()):  # the runs the tick queued (the Ticker's), run here
        runner.run(CLEAN, partition=day)
    assert tick_at(2.5) == {}  # the request is handled
    produce(bootstrap, topic, events(2, 2))
    runner.run(RAW, partition=today())
    assert tick_at(3) == {}  # raw is newer than clean, but no tick of the schedule since: it waits
    assert tick_at(5.1) == {dg.AssetKey(CLEAN): {yesterday(), today()}}
    for day in (yesterday(), today()):
        runner.run(CLEAN, partition=day)
    assert tick_at(5.5) == {}
    produce(bootstrap, topic, events(4, 2))
    runner.run(RAW, partition=today())
    assert tick_at(6) == {}  # requested since the last tick of the schedule: once per tick
    assert tick_at(10.1) == {dg.AssetKey(CLEAN): {yesterday(), today()}}
    assert tick_at(10.5) == {}


def test_the_lag_sensor_gathers_a_trickle_into_micro_batches_by_size_or_time(bootstrap, instance, data_dir):
    topic = new_topic(bootstrap, partitions=1)
    defs = stream_defs(stream_spec(topic, micro_batch_messages=5, micro_batch_wait_seconds=3.0))
    produce(bootstrap, topic, events(0, 2))
    first = _tick(defs, instance)
    assert first.run_requests == [] and first.skip_message.startswith(
        "stream_events: 2 message(s) waiting for 0 s; a run starts at 5 or after 3 s"
    )
    produce(bootstrap, topic, events(2, 1))  # the lag changes: the wait still counts from the first
    second = _tick(defs, instance, first.cursor)
    assert second.run_requests == [] and "3 message(s) waiting" in second.skip_message
    time.sleep(3.1)
    produce(bootstrap, topic, events(3, 1))  # changed again, four waiting: the first has waited 3 s
    timed = _tick(defs, instance, second.cursor)
    [by_time] = timed.run_requests
    assert by_time.tags["ml_platform/stream_ranges"] == "0=0-3"
    Runner(defs, instance, data_dir).run(RAW, partition=today(), tags=by_time.tags)
    produce(bootstrap, topic, events(4, 5))  # five waiting: a run at once
    [by_size] = _tick(defs, instance, timed.cursor).run_requests
    assert by_size.tags["ml_platform/stream_ranges"] == "0=4-8"
