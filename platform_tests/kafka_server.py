"""The tests' Kafka broker and what they do with it: topics, messages, deleted records.

One broker per test process (`shared_broker()`), started on first use from the project's jars
(`ml_platform.demo.kafka_broker`, fetched by `make kafka`) and stopped when the process exits;
tests that share it use topics of their own (`new_topic`). Tests that restart a broker start
their own (`kafka_broker()`). Without Java 17+ or the jars the test fails and says which.

`stream_side` builds a stream source's raw side, clean asset and sensor for a topic, as the code
location would, with a `Runner` over them.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import shutil
import tempfile
import uuid
from pathlib import Path

import dagster as dg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from conftest import Runner
from ml_platform.demo.kafka_broker import KafkaBroker, missing_reason, new_broker

_shared: KafkaBroker | None = None


def shared_broker() -> KafkaBroker:
    """The process's broker, started on first use."""
    global _shared
    if _shared is None:
        reason = missing_reason()
        if reason:
            pytest.fail(f"the Kafka tests need a broker: {reason}", pytrace=False)
        root = Path(tempfile.mkdtemp(prefix="ml-platform-kafka-"))
        broker = new_broker(root)
        broker.start()

        def _stop():
            broker.stop(hard=True)
            shutil.rmtree(root, ignore_errors=True)

        atexit.register(_stop)
        _shared = broker
    return _shared


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def new_topic(bootstrap: str, partitions: int = 2, config: dict | None = None, name: str | None = None) -> str:
    """A topic of its own for a test (a fresh name unless `name`)."""
    name = name or f"t-{uuid.uuid4().hex[:10]}"
    topic = NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})
    client = admin(bootstrap)  # kept until the future resolves: a collected client cancels its requests
    client.create_topics([topic])[name].result(30)
    return name


def delete_topic(bootstrap: str, topic: str) -> None:
    client = admin(bootstrap)
    client.delete_topics([topic])[topic].result(30)


def add_partitions(bootstrap: str, topic: str, total: int) -> None:
    client = admin(bootstrap)
    client.create_partitions([NewPartitions(topic, total)])[topic].result(30)


def delete_records(bootstrap: str, topic: str, partition: int, before: int) -> None:
    """Delete the partition's messages below offset `before`, as retention would."""
    client = admin(bootstrap)
    [future] = client.delete_records([TopicPartition(topic, partition, before)]).values()
    future.result(30)


def produce(bootstrap: str, topic: str, values: list, partition: int | None = None, key: str | None = None) -> None:
    """Send `values` (dicts as JSON, str as UTF-8, bytes as they are, None as a tombstone) and wait
    until every one is acknowledged."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    failures = []
    for value in values:
        if isinstance(value, dict):
            value = json.dumps(value).encode()
        elif isinstance(value, str):
            value = value.encode()
        extra = {"partition": partition} if partition is not None else {}
        while True:
            try:
                producer.produce(
                    topic, value=value, key=key, on_delivery=lambda e, _m: e and failures.append(e), **extra
                )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(60) == 0
    assert failures == []


def watermarks(bootstrap: str, topic: str) -> dict[int, tuple[int, int]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "tests"})
    try:
        partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions}
    finally:
        consumer.close()


def stream_spec(topic: str, **changes):
    """The demo stream source (`declarations/sources/stream_events.py`) on another topic; its lag
    sensor requests a run for any lag at once (`micro_batch_messages=1`) unless `changes` say otherwise."""
    from ml_platform.declarations.sources.stream_events import SPEC

    return dataclasses.replace(SPEC, topic=topic, **{"micro_batch_messages": 1, **changes})


def stream_defs(spec) -> dg.Definitions:
    """The source's raw side (raw asset, lag sensor, Kafka resource) and clean asset, on the
    test's warehouse, as the code location builds them."""
    from ml_platform import settings
    from ml_platform.definitions import source_definitions
    from ml_platform.warehouse import Warehouse

    side = source_definitions(spec)
    return dg.Definitions(
        assets=side.assets,
        sensors=side.sensors,
        resources={"warehouse": Warehouse(database=str(settings.warehouse_path())), **side.resources},
    )


def stream_runner(spec, instance: dg.DagsterInstance, data_dir: Path) -> Runner:
    return Runner(stream_defs(spec), instance, data_dir)
