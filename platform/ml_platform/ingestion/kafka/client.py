"""The connection to a Kafka topic: its partitions and watermarks, and reading exact offset ranges.

Reading never uses a consumer group's offsets: each partition is `assign`ed at the offset to
start from (what the warehouse holds), read up to an end offset taken before, and nothing is
committed to Kafka (`enable.auto.commit=false`; librdkafka needs a `group.id`, which is never
joined nor committed to). `auto.offset.reset=error`: an offset that is no longer on the broker
fails the read instead of silently jumping to another offset. librdkafka reconnects by itself,
so a broker that restarts within the read's time bound only delays it.

The bootstrap servers come from the environment through Dagster's `EnvVar` (`KafkaResource`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import pyarrow as pa
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from pydantic import Field

from ml_platform.ingestion.kafka.spec import KafkaSourceSpec

# Messages per Arrow batch handed to the warehouse: memory stays bounded whatever the lag.
BATCH_MESSAGES = 50_000
# Messages asked of librdkafka per call, and how long a call waits for that many: it returns
# what has arrived when the time is up, so a short wait ends a small read early.
CONSUME_MESSAGES = 10_000
CONSUME_WAIT_SECONDS = 0.05
# How much librdkafka fetches ahead of the reader, per consumer: bounds a run's memory beside the
# Arrow batches.
PREFETCH_KBYTES = 16_384
# A message's state before it is judged: its value is text to parse, or why it is not.
OK, TOMBSTONE, OVERSIZE, NOT_UTF8 = "ok", "tombstone", "oversize", "not_utf8"

MESSAGE_SCHEMA = pa.schema(
    [
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("kafka_timestamp", pa.timestamp("ms")),
        ("kafka_key", pa.string()),
        ("value", pa.string()),
        ("size_bytes", pa.int64()),
        ("state", pa.string()),
    ]
)

# librdkafka's own log lines (connection refused while a broker restarts, ...) go to Python logging.
_LIBRDKAFKA_LOG = logging.getLogger("ml_platform.kafka.librdkafka")


class KafkaSourceError(RuntimeError):
    """The topic could not be read; the message says why in words (and never holds credentials)."""


class KafkaResource(dg.ConfigurableResource):
    """Where a Kafka source's broker is. Build it with `dg.EnvVar`: the value stays in the environment."""

    bootstrap_servers: str = Field(description="host:port[,host:port] (from the source's bootstrap_servers_env).")

    def reader(self, spec: KafkaSourceSpec):
        return topic_reader(self.bootstrap_servers, spec)


def kafka_resource(spec: KafkaSourceSpec) -> KafkaResource:
    return KafkaResource(bootstrap_servers=dg.EnvVar(spec.bootstrap_servers_env))


@contextmanager
def topic_reader(bootstrap_servers: str, spec: KafkaSourceSpec) -> Iterator[TopicReader]:
    reader = TopicReader(bootstrap_servers, spec)
    try:
        yield reader
    finally:
        reader.close()


class TopicReader:
    """One consumer on the spec's topic (never subscribed: partitions are assigned at offsets)."""

    def __init__(self, bootstrap_servers: str, spec: KafkaSourceSpec):
        self.bootstrap_servers, self.spec, self.topic = bootstrap_servers, spec, spec.topic
        self.errors: list[str] = []  # librdkafka's reports (broker down, ...), for the failure message
        timeout_ms = int(spec.request_timeout_seconds * 1000)
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap_servers,
                "group.id": f"ml_platform.{spec.name}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "error",
                "enable.partition.eof": True,
                "allow.auto.create.topics": False,
                # Only committed records of transactional producers; the end offsets come from the
                # same isolation level, so a read never waits for an open transaction's records.
                "isolation.level": "read_committed",
                "socket.timeout.ms": max(timeout_ms, 1000),
                # A broker that restarts is found again within 2 s of its return (librdkafka's
                # default backs off to 10 s between attempts).
                "reconnect.backoff.max.ms": 2000,
                "queued.max.messages.kbytes": PREFETCH_KBYTES,
                "error_cb": self._error,
                "logger": _LIBRDKAFKA_LOG,
            }
        )

    def _error(self, error: KafkaError) -> None:
        self.errors.append(error.str())
        if error.fatal():
            raise KafkaException(error)

    def where(self) -> str:
        return f"topic {self.topic} at {self.bootstrap_servers}"

    def close(self) -> None:
        self.consumer.close()

    def partitions(self) -> list[int]:
        """The topic's partitions; KafkaSourceError when the broker cannot be reached or the topic
        does not exist."""
        try:
            metadata = self.consumer.list_topics(self.topic, timeout=self.spec.request_timeout_seconds)
        except KafkaException as exc:
            raise KafkaSourceError(
                f"{self.spec.name}: Kafka broker at {self.bootstrap_servers} unreachable: {_words(exc)}"
            ) from None
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None:
            code = topic.error.code() if topic is not None else None
            if code in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC, None):
                raise KafkaSourceError(
                    f"{self.spec.name}: topic {self.topic} does not exist at {self.bootstrap_servers}"
                    " (deleted, or not created yet)"
                )
            raise KafkaSourceError(f"{self.spec.name}: cannot read {self.where()}: {topic.error.str()}")
        if not topic.partitions:
            raise KafkaSourceError(f"{self.spec.name}: {self.where()} has no partitions")
        return sorted(topic.partitions)

    def watermarks(self, partitions: list[int]) -> dict[int, tuple[int, int]]:
        """Partition -> (log start offset, high watermark): the first offset still on the broker,
        and the offset the next message will get."""
        found = {}
        for partition in partitions:
            try:
                low, high = self.consumer.get_watermark_offsets(
                    TopicPartition(self.topic, partition), timeout=self.spec.request_timeout_seconds, cached=False
                )
            except KafkaException as exc:
                raise KafkaSourceError(
                    f"{self.spec.name}: watermarks of {self.where()} partition {partition} unavailable: {_words(exc)}"
                ) from None
            found[partition] = (low, high)
        return found

    def read(self, ranges: dict[int, tuple[int, int]]) -> Iterator[pa.RecordBatch]:
        """Every message at offsets [first, end) of each partition, as Arrow batches of
        MESSAGE_SCHEMA, in no particular order across partitions. KafkaSourceError when the
        ranges cannot be read in full within the spec's read_timeout_seconds."""
        remaining = {p: end for p, (first, end) in ranges.items() if end > first}
        if not remaining:
            return
        deadline = time.monotonic() + self.spec.read_timeout_seconds
        self.consumer.assign([TopicPartition(self.topic, p, ranges[p][0]) for p in sorted(remaining)])
        columns: dict[str, list] = {name: [] for name in MESSAGE_SCHEMA.names}
        limit = self.spec.max_message_bytes
        try:
            while remaining:
                if time.monotonic() > deadline:
                    raise KafkaSourceError(self._timeout_words(remaining))
                for message in self.consumer.consume(CONSUME_MESSAGES, timeout=CONSUME_WAIT_SECONDS):
                    error = message.error()
                    partition = message.partition()
                    if error is not None:
                        self._message_error(error, partition, message.offset(), remaining)
                        continue
                    end = remaining.get(partition)
                    offset = message.offset()
                    if end is None or offset >= end:
                        continue  # past this run's range: the next run reads it
                    _append(columns, message, partition, offset, limit)
                    if offset >= end - 1:
                        self._done(partition, remaining)
                if len(columns["offset"]) >= BATCH_MESSAGES:
                    yield pa.RecordBatch.from_pydict(columns, schema=MESSAGE_SCHEMA)
                    columns = {name: [] for name in MESSAGE_SCHEMA.names}
            if columns["offset"]:
                yield pa.RecordBatch.from_pydict(columns, schema=MESSAGE_SCHEMA)
        finally:
            self.consumer.unassign()

    def _done(self, partition: int, remaining: dict[int, int]) -> None:
        remaining.pop(partition, None)
        self.consumer.pause([TopicPartition(self.topic, partition)])

    def _message_error(self, error: KafkaError, partition: int, offset: int, remaining: dict[int, int]) -> None:
        code = error.code()
        if code == KafkaError._PARTITION_EOF:
            # The end of the log: a range ending in transaction markers (never delivered) is done.
            if partition in remaining and offset >= remaining[partition]:
                self._done(partition, remaining)
            return
        if code in (KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE):
            raise KafkaSourceError(
                f"{self.spec.name}: {self.where()} partition {partition}: offset {offset} is no longer on the broker"
                " (deleted by retention while this run read it); nothing was written, and the next run records"
                " the lost offsets"
            )
        if code in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC, KafkaError._UNKNOWN_PARTITION):
            raise KafkaSourceError(f"{self.spec.name}: {self.where()} partition {partition} disappeared while read")
        if error.fatal():
            raise KafkaSourceError(f"{self.spec.name}: reading {self.where()} failed: {error.str()}")
        self.errors.append(error.str())  # transient (a broker restarting): librdkafka retries

    def _timeout_words(self, remaining: dict[int, int]) -> str:
        positions = {
            tp.partition: tp.offset
            for tp in self.consumer.position([TopicPartition(self.topic, p) for p in sorted(remaining)])
        }
        left = ", ".join(f"partition {p} at {positions.get(p)} of {end}" for p, end in sorted(remaining.items()))
        last = f"; last broker error: {self.errors[-1]}" if self.errors else ""
        return (
            f"{self.spec.name}: {self.where()} not read to its end offsets within "
            f"{self.spec.read_timeout_seconds:g}s ({left}){last}; nothing was written"
        )


def _append(columns: dict[str, list], message, partition: int, offset: int, limit: int) -> None:
    value = message.value()
    kind, stamp = message.timestamp()
    key = message.key()
    columns["partition"].append(partition)
    columns["offset"].append(offset)
    columns["kafka_timestamp"].append(stamp if kind != 0 else None)  # 0: TIMESTAMP_NOT_AVAILABLE
    columns["kafka_key"].append(key.decode("utf-8", "backslashreplace") if key is not None else None)
    columns["size_bytes"].append(len(value) if value is not None else 0)
    if value is None:
        state, text = TOMBSTONE, None
    elif len(value) > limit:
        # Never decoded: only its start is kept, as the excerpt.
        state, text = OVERSIZE, value[:1024].decode("utf-8", "replace")
    else:
        try:
            state, text = OK, value.decode("utf-8")
        except UnicodeDecodeError:
            state, text = NOT_UTF8, value[:1024].decode("utf-8", "backslashreplace")
    columns["value"].append(text)
    columns["state"].append(state)


def _words(exc: KafkaException) -> str:
    error = exc.args[0] if exc.args else None
    return error.str() if isinstance(error, KafkaError) else str(exc)
