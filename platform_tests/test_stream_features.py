"""Stream feature views against a real broker: the 5-minute and 1-hour user activity windows
brought up to date by each micro-batch in the raw run, exact values, late events, duplicates and
poison, point-in-time retrieval equal to what was servable, and the lag sensor's run carrying
the views.

Every test has a topic of its own on the process's broker and its own warehouse.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb
import pandas as pd
import pytest

from conftest import Runner
from helpers import pseudonym, run_check
from kafka_server import new_topic, produce, shared_broker, stream_defs, stream_spec
from ml_platform.curated.stream_asset import stream_view_asset
from ml_platform.declarations.stream_features.user_activity_1h import VIEW as VIEW_1H
from ml_platform.declarations.stream_features.user_activity_5m import VIEW as VIEW_5M
from ml_platform.training import get_training_set

RAW = "raw_stream_events"
ENV = "ML_PLATFORM_KAFKA_BOOTSTRAP_SERVERS"
VIEWS = {VIEW_5M.name: VIEW_5M, VIEW_1H.name: VIEW_1H}
FEATURES_5M = ["events_5m", "unique_products_viewed_5m", "cart_adds_5m", "purchases_5m", "spend_5m"]
FEATURES_1H = ["events_1h", "unique_products_viewed_1h", "cart_adds_1h", "purchases_1h", "spend_1h"]


@pytest.fixture(scope="module")
def broker():
    return shared_broker()


@pytest.fixture
def stream(broker, monkeypatch, data_dir, instance):
    """(runner over raw + both views on a fresh topic, the topic, now rounded to the second)."""
    monkeypatch.setenv(ENV, broker.bootstrap)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    if now.hour == 0 and now.minute < 5 or now.hour == 23 and now.minute > 57:
        pytest.skip("a micro-batch's landing day is the day it is read: not run within minutes of midnight UTC")
    topic = new_topic(broker.bootstrap, partitions=2)
    spec = stream_spec(topic)
    side = stream_defs(spec)
    defs = dg.Definitions(
        assets=[*side.assets, stream_view_asset(VIEW_5M, spec), stream_view_asset(VIEW_1H, spec)],
        sensors=side.sensors,
        resources=side.resources,
    )
    return Runner(defs, instance, data_dir), topic, now.replace(tzinfo=None)


def ev(i: str, user: str, kind: str, at: dt.datetime, product: str | None = None, amount: float | None = None) -> dict:
    return {
        "event_id": i,
        "user_id": user,
        "event_type": kind,
        "event_time": at.replace(tzinfo=dt.UTC).isoformat(),
        "product_id": product,
        "amount": amount,
        "device_type": "mobile",
        "session_id": "s1",
    }


def micro_batch(runner: Runner, day: str) -> dg.ExecuteInProcessResult:
    return runner.run(RAW, VIEW_5M.name, VIEW_1H.name, partition=day)


def view_rows(runner: Runner, view: str, features: list[str]) -> list[set[tuple]]:
    """The view's rows per micro-batch, oldest batch first."""
    cols = ", ".join(features)
    batches: dict = {}
    for batch, *row in runner.query(f"SELECT batch_ingested_at, user_id, event_timestamp, {cols} FROM {view}"):
        batches.setdefault(batch, set()).add(tuple(row))
    return [batches[b] for b in sorted(batches)]


def test_each_micro_batch_updates_the_windows_exactly(stream, broker):
    runner, topic, now = stream
    m = dt.timedelta(minutes=1)
    day = now.date().isoformat()
    first = [
        ev("a1", "u1", "product_view", now - 70 * m, "P1"),  # in no window of u1's head (now - 1 min)
        ev("a2", "u1", "add_to_cart", now - 50 * m, "P1"),
        ev("a3", "u1", "purchase", now - 3 * m, "P1", 10.1),
        ev("a4", "u1", "product_view", now - 1 * m, "P2"),
        ev("a3", "u1", "purchase", now - 3 * m, "P1", 10.1),  # a producer's retry: the same event again
        ev("b1", "u2", "purchase", now - 30 * m, "P9", 0.2),
        "not json",  # poison: recorded by raw, never counted
    ]
    produce(broker.bootstrap, topic, first)
    result = micro_batch(runner, day)
    for view in VIEWS:  # guarded as every curated table: the contract, and no raw id (pseudonyms only)
        assert run_check(result, view, "contract").passed and run_check(result, view, "privacy").passed
    u1, u2 = pseudonym("u1"), pseudonym("u2")
    head1, head2 = now - 1 * m, now - 30 * m
    assert view_rows(runner, VIEW_5M.name, FEATURES_5M) == [
        {(u1, head1, 2, 1, 0, 1, 10.1), (u2, head2, 1, 0, 0, 1, 0.2)},
    ]
    assert view_rows(runner, VIEW_1H.name, FEATURES_1H) == [
        {(u1, head1, 3, 1, 1, 1, 10.1), (u2, head2, 1, 0, 0, 1, 0.2)},
    ]

    # A late event of u1 inside both windows (its head does not move: a correction of the same
    # timestamp), a purchase of u2 that moves its head, and a duplicate that changes nothing.
    second = [
        ev("a5", "u1", "purchase", now - 2 * m, "P3", 0.1),
        ev("b2", "u2", "purchase", now, "P9", 0.1),
        ev("a2", "u1", "add_to_cart", now - 50 * m, "P1"),
    ]
    produce(broker.bootstrap, topic, second)
    micro_batch(runner, day)
    assert view_rows(runner, VIEW_5M.name, FEATURES_5M)[1:] == [
        {
            (u1, head1, 3, 1, 0, 2, 10.2),  # 10.1 + 0.1 exactly (in doubles, 10.2 plus a bit): sums are DECIMAL
            (u2, now, 1, 0, 0, 1, 0.1),  # 30 minutes ago is out of the 5-minute window
        }
    ]
    assert view_rows(runner, VIEW_1H.name, FEATURES_1H)[1:] == [
        {(u1, head1, 4, 1, 1, 2, 10.2), (u2, now, 2, 0, 0, 2, 0.3)},
    ]
    # Each batch applied once, in order, with what it brought; a third run brings nothing.
    micro_batch(runner, day)
    assert runner.query("SELECT view, events, rows FROM stream_view_batches ORDER BY batch_ingested_at, view") == [
        ("user_activity_1h", 5, 2),
        ("user_activity_5m", 5, 2),
        ("user_activity_1h", 2, 2),
        ("user_activity_5m", 2, 2),
    ]
    # The state keeps what a window can still reach: a1 (70 minutes before u1's head) is gone
    # from the hour view's events, b1 (30 minutes before u2's new head) from the 5-minute one's.
    assert runner.query("SELECT event_id FROM user_activity_1h__events ORDER BY 1") == [
        ("a2",),
        ("a3",),
        ("a4",),
        ("a5",),
        ("b1",),
        ("b2",),
    ]
    assert runner.query("SELECT event_id FROM user_activity_5m__events ORDER BY 1") == [
        ("a3",),
        ("a4",),
        ("a5",),
        ("b2",),
    ]


def test_training_rows_get_the_value_servable_at_their_time(stream, broker, data_dir):
    runner, topic, now = stream
    m = dt.timedelta(minutes=1)
    day = now.date().isoformat()
    produce(broker.bootstrap, topic, [ev("a1", "u1", "purchase", now - 2 * m, "P1", 5.0)])
    micro_batch(runner, day)
    produce(broker.bootstrap, topic, [ev("a2", "u1", "purchase", now - 3 * m, "P2", 7.25)])  # late: a correction
    micro_batch(runner, day)
    (c1,), (c2,) = runner.query("SELECT created_at FROM user_activity_5m ORDER BY created_at")
    u1 = pseudonym("u1")
    moments = [
        c1 - dt.timedelta(microseconds=1),  # before the first row was servable: nothing
        c1,  # the first row
        c2 - dt.timedelta(microseconds=1),  # still the first row: the correction was not servable yet
        c2,  # the correction (same timestamp, later created_at)
        now - 2 * m + VIEW_5M.window,  # the TTL's last moment: still served
        now - 2 * m + VIEW_5M.window + dt.timedelta(microseconds=1),  # past it: null, not an older row
    ]
    entities = pd.DataFrame({"user_id": [u1] * len(moments), "event_timestamp": moments})
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        got = get_training_set(
            con, entities, ["user_activity_5m:purchases_5m", "user_activity_5m:spend_5m"], views=VIEWS
        ).fetchall()
    finally:
        con.close()
    assert [row[-2:] for row in got] == [(None, None), (1, 5.0), (1, 5.0), (2, 12.25), (2, 12.25), (None, None)]


def test_the_lag_sensors_runs_carry_the_stream_views(stream, broker, instance):
    runner, topic, now = stream
    produce(broker.bootstrap, topic, [ev("a1", "u1", "page_view", now)])
    context = dg.build_sensor_context(instance=instance, definitions=runner.defs)
    result = runner.defs.resolve_sensor_def("stream_events_lag_sensor").evaluate_tick(context)
    [request] = result.run_requests
    assert sorted(k.to_user_string() for k in request.asset_selection) == [RAW, "user_activity_1h", "user_activity_5m"]


def test_views_that_failed_after_raw_committed_are_brought_up_to_date_by_the_next_run(
    stream, broker, instance, monkeypatch
):
    from ml_platform import online_store
    from ml_platform.demo.redis_server import redis_server

    runner, topic, now = stream
    day = now.date().isoformat()
    sensor = runner.defs.resolve_sensor_def("stream_events_lag_sensor")

    def tick():
        return sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=runner.defs))

    with redis_server() as server:
        monkeypatch.setenv("ML_PLATFORM_REDIS_URL", server.url)
        produce(broker.bootstrap, topic, [ev("a1", "u1", "purchase", now, "P1", 2.5)])
        server.stop()  # the online store is away: the views cannot publish, raw commits anyway
        [first] = tick().run_requests
        result = runner.run(RAW, VIEW_5M.name, VIEW_1H.name, partition=day, tags=first.tags, expect_success=False)
        assert sorted(e.step_key for e in result.get_step_failure_events()) == [VIEW_1H.name, VIEW_5M.name]
        assert runner.query("SELECT count(*) FROM raw_stream_events") == [(1,)]
        # The views' transactions rolled back whole: not even their tables were created.
        assert runner.query("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'user_activity%'") == [(0,)]
        # No lag is left, yet the sensor asks for a run, once, for the steps that failed.
        [request] = tick().run_requests
        failed = instance.get_runs(limit=1)[0]
        assert request.run_key == f"stream_events:{day}:{topic}:after-{failed.run_id[:8]}"
        assert sorted(k.to_user_string() for k in request.asset_selection) == [RAW, VIEW_1H.name, VIEW_5M.name]
        server.start()
        runner.run(RAW, VIEW_5M.name, VIEW_1H.name, partition=day, tags=request.tags)
        u1 = pseudonym("u1")
        assert runner.query("SELECT user_id, purchases_5m, spend_5m FROM user_activity_5m") == [(u1, 1, 2.5)]
        store = online_store.configured_store()
        _, [vector] = store.read(VIEW_5M.name, [(u1,)], ["spend_5m"], VIEW_5M.ttl)
        assert vector == {"spend_5m": 2.5}
        assert tick().skip_message == f"stream_events: no lag on {topic}"
