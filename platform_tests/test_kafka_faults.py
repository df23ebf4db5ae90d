"""Exactly once from Kafka into raw under faults: runs killed with SIGKILL at every stage of their
transaction, and a broker killed and restarted in the middle of a read. (A broker that cannot be
reached when a run starts, a deleted topic and added partitions: test_kafka_source.py.)

After every fault the warehouse must be consistent (the rows raw holds are exactly the offsets
`stream_offsets` says were read: no message twice, none skipped), unchanged by a run that did
not commit, and the next run must bring raw to exactly every message produced.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading

import duckdb
import pytest

from crash_runner import Kill, RunServer
from helpers import run_metadata
from kafka_server import delete_topic, new_topic, produce, shared_broker, stream_runner, stream_spec, watermarks
from ml_platform.demo.kafka_broker import kafka_broker
from ml_platform.ingestion.kafka import client as kafka_client

ENV = "ML_PLATFORM_KAFKA_BOOTSTRAP_SERVERS"
RAW = "raw_stream_events"
# The demo stream source's topic: the run server loads the code location as it is.
TOPIC = "clickstream"
# Messages per batch: enough that a run's transaction lasts long enough to be killed inside it.
BATCH = 20_000


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def events(first: int, count: int) -> list[dict]:
    at = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    return [
        {"event_id": f"e{i}", "user_id": f"U{i % 50:05d}", "event_type": "page_view", "event_time": at}
        for i in range(first, first + count)
    ]


STATE_SQL = {
    "rows": "SELECT count(*), count(DISTINCT (kafka_partition, kafka_offset)) FROM raw_stream_events",
    "offsets": "SELECT partition, next_offset FROM stream_offsets",
    "batches": "SELECT count(*) FROM stream_batches",
    # Each partition's rows are exactly offsets 0 .. next_offset - 1.
    "gapless": """SELECT coalesce(bool_and(n = hi + 1 AND lo = 0), true) FROM (
                    SELECT kafka_partition, count(*) n, min(kafka_offset) lo, max(kafka_offset) hi
                    FROM raw_stream_events GROUP BY 1)""",
}


def _state(con) -> dict:
    rows, distinct = con.execute(STATE_SQL["rows"]).fetchone()
    return {
        "rows": rows,
        "distinct": distinct,
        "offsets": dict(con.execute(STATE_SQL["offsets"]).fetchall()),
        "batches": con.execute(STATE_SQL["batches"]).fetchone()[0],
        "gapless": con.execute(STATE_SQL["gapless"]).fetchone()[0],
    }


def raw_state(warehouse) -> dict:
    """What raw holds and what the offsets say in the warehouse (its tables, or its views of the lake
    tables), opened read-write as the next run would (recovering the WAL a killed run left)."""
    con = duckdb.connect(str(warehouse))
    try:
        tables = {t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "raw_stream_events" not in tables:
            return {"rows": 0, "distinct": 0, "offsets": {}, "batches": 0}
        return _state(con)
    finally:
        con.close()


def lake_state(_warehouse) -> dict:
    """The same, read from the lake tables' current snapshots in the catalog (the warehouse's views
    may be older: a run killed after its catalog commit did not point them)."""
    from ml_platform.lakehouse.scan import scan_sql
    from ml_platform.lakehouse.tables import load_table

    lake = {name: load_table(name) for name in ("raw_stream_events", "stream_offsets", "stream_batches")}
    if lake["raw_stream_events"] is None:
        return {"rows": 0, "distinct": 0, "offsets": {}, "batches": 0}
    con = duckdb.connect()
    try:
        for name, table in lake.items():
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM {scan_sql(table)}")
        return _state(con)
    finally:
        con.close()


def consistent(state: dict) -> bool:
    """No message twice, none skipped: rows are exactly the offsets stored as read."""
    return state["rows"] == state["distinct"] == sum(state["offsets"].values()) and state.get("gapless", True)


@pytest.mark.parametrize("on_lake", [False, True], ids=["warehouse", "lake"])
def test_runs_killed_at_any_point_of_their_transaction_leave_every_message_once(tmp_path, monkeypatch, on_lake):
    """In the warehouse file (`ML_PLATFORM_LAKE_TABLES=false`): kills inside its transaction, at its
    COMMIT and after. On the lake: kills while the run works in its own file, at its catalog commit
    and after it (before the warehouse's views are pointed)."""
    broker = shared_broker()
    monkeypatch.setenv(ENV, broker.bootstrap)
    if TOPIC in watermarks_or_none(broker.bootstrap):
        delete_topic(broker.bootstrap, TOPIC)
    new_topic(broker.bootstrap, partitions=3, name=TOPIC)
    data = tmp_path / "data"
    data.mkdir()
    warehouse = data / "warehouse.duckdb"
    wal = warehouse.with_name("warehouse.duckdb.wal")
    monkeypatch.setenv("ML_PLATFORM_DATA_DIR", str(data))  # the lake's catalog, for lake_state
    server = RunServer(data, tmp_path / "server.log", None if on_lake else {"ML_PLATFORM_LAKE_TABLES": "false"})
    state_of = lake_state if on_lake else raw_state
    first, commit = ("work", "lake-commit") if on_lake else ("begin", "commit")
    try:
        produce(broker.bootstrap, TOPIC, events(0, BATCH))
        assert server.run(RAW, today()).succeeded  # cold: the server's first run creates the tables
        produce(broker.bootstrap, TOPIC, events(BATCH, BATCH))
        # The kills below are timed by a warm run's span: a cold one is longer, and a kill timed by
        # it landed after COMMIT.
        reference = server.run(RAW, today())
        assert reference.succeeded, reference
        produced = 2 * BATCH
        span = reference.span(first, commit)
        assert state_of(warehouse)["rows"] == produced

        kills = (
            [
                # Reading the topic and writing the working copy, then its catalog commit starting, and
                # the catalog commit done (the warehouse's views not pointed yet, Dagster not told).
                Kill("work", 0.3),
                Kill("work", 0.8),
                Kill("lake-commit", 0.0),
                Kill("lake-committed", 0.0),
            ]
            if on_lake
            else [
                # Reading the topic, then judging and inserting the rows (the transaction's first part
                # is the read, its last the writes): fractions of a warm run's span from BEGIN to COMMIT.
                Kill("begin", 0.3),
                Kill("begin", 0.8),
                # COMMIT starting, COMMIT with bytes in the WAL, COMMIT returned (Dagster not told yet).
                Kill("commit", 0.0),
                Kill("commit", written=wal),
                Kill("committed", 0.0),
            ]
        )
        outcomes = []
        for kill in kills:
            # A run quicker than the warm one can finish before a timed kill: then the kill is
            # timed again by the quickest span seen, on a new batch.
            for _attempt in range(3):
                before = state_of(warehouse)
                if before["rows"] == produced:  # the last run committed: a new batch for this one
                    produce(broker.bootstrap, TOPIC, events(produced, BATCH))
                    produced += BATCH
                timed = dataclasses.replace(kill, delay=kill.delay * span)
                outcome = server.run(RAW, today(), kill=timed)
                after = state_of(warehouse)
                assert consistent(after), (str(timed), after)
                if outcome.killed or kill.delay == 0 or not outcome.succeeded:
                    break
                assert after["rows"] == produced, (str(timed), after)
                span = min(span, outcome.span(first, commit))
            outcomes.append((str(timed), commit in outcome.markers, before["rows"], after["rows"]))
            assert outcome.killed, (str(timed), outcome)
            if commit not in outcome.markers:
                assert after == before, str(timed)  # killed before COMMIT: nothing written
            else:
                assert after["rows"] in (before["rows"], produced), (str(timed), after)
        # Every kill before COMMIT left nothing (asserted above), and a third of a warm run's span
        # after BEGIN is before it: reading and writing the rows were interrupted at least once.
        # (The second kill usually lands there too, but a run quicker than the one that timed it
        # may have reached COMMIT by then.) The kill after COMMIT left its whole batch.
        _, reached_commit, rows_before, rows_after = outcomes[0]
        assert (reached_commit, rows_after) == (False, rows_before), outcomes
        assert outcomes[-1][3] == produced, outcomes

        final = server.run(RAW, today())
        assert final.succeeded, final
        state = raw_state(warehouse)  # the warehouse's views show it too
        assert (state["rows"], state["distinct"], state["gapless"]) == (produced, produced, True)
        assert state["offsets"] == {p: high for p, (_, high) in watermarks(broker.bootstrap, TOPIC).items()}
    finally:
        server.close()
        delete_topic(broker.bootstrap, TOPIC)


def watermarks_or_none(bootstrap: str) -> set[str]:
    from confluent_kafka.admin import AdminClient

    return set(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics)


@pytest.fixture
def own_broker():
    """A broker of this test's own: it is restarted."""
    with kafka_broker() as broker:
        yield broker


def test_a_broker_restarting_mid_read_loses_nothing_and_repeats_nothing(own_broker, instance, data_dir, monkeypatch):
    monkeypatch.setenv(ENV, own_broker.bootstrap)
    topic = new_topic(own_broker.bootstrap, partitions=2)
    runner = stream_runner(stream_spec(topic, request_timeout_seconds=2.0), instance, data_dir)
    # Read in batches of 5000 messages, fetching 64 kB ahead: the broker goes away after the first
    # batch, with most of the messages still on it.
    monkeypatch.setattr(kafka_client, "BATCH_MESSAGES", 5000)
    monkeypatch.setattr(kafka_client, "PREFETCH_KBYTES", 64)
    total = 20_000
    produce(own_broker.bootstrap, topic, events(0, total))

    # The broker is killed once the run has read its first batch of messages, and comes back.
    first_batch_read = threading.Event()
    read = kafka_client.TopicReader.read

    read_after_the_kill = [0]

    def signalling_read(self, ranges):
        for batch in read(self, ranges):
            if first_batch_read.is_set():
                read_after_the_kill[0] += batch.num_rows
            first_batch_read.set()
            yield batch

    monkeypatch.setattr(kafka_client.TopicReader, "read", signalling_read)
    results = []
    worker = threading.Thread(target=lambda: results.append(runner.run(RAW, partition=today())))
    worker.start()
    assert first_batch_read.wait(120)
    own_broker.stop(hard=True)
    own_broker.start()
    worker.join(180)
    meta = run_metadata(results[0], RAW)
    assert meta["broker_errors_during_read"] > 0  # the read did see the broker go
    assert read_after_the_kill[0] > 0, read_after_the_kill  # and went on reading once it was back
    assert (meta["messages_read"], meta["rows_ingested"]) == (total, total)
    assert runner.query("SELECT count(*), count(DISTINCT (kafka_partition, kafka_offset)) FROM raw_stream_events") == [
        (total, total)
    ]

    assert runner.query("SELECT partition, next_offset FROM stream_offsets ORDER BY 1") == sorted(
        (p, high) for p, (_, high) in watermarks(own_broker.bootstrap, topic).items()
    )
