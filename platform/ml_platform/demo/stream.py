"""The demo's live clickstream: events produced to a Kafka topic with what real producers do.

`python -m ml_platform.demo stream --rate N` sends the web shop's events (the `events` source's
shape, one JSON object per message, keyed by user id) at about N messages a second, and mixes in:

- duplicates: a message sent again a few messages later, as a producer does when it retries a send
  whose acknowledgement it did not get (`DUPLICATE_RATE`);
- out-of-order events: an event time up to two minutes before the previous ones (`OUT_OF_ORDER_RATE`);
- late events: hours old, from a client that buffered them offline (`LATE_RATE`, within the
  source's tolerance of a day);
- poison, now and then (`POISON_RATE`): a value that is not JSON, a JSON array, an event time
  nobody can read, or raw bytes that are not UTF-8.

It creates the topic when it does not exist (`--partitions`, 3 by default). With `--count` it
stops after that many messages and prints what it sent as JSON (what the platform's tables must
then hold: `unique_events` rows in clean, `poison` messages rejected); otherwise it runs until
Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import json
import random
import signal
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

from ml_platform.demo.dimensions import MIN_USERS, N_PRODUCTS, user_id
from ml_platform.demo.generator import DEVICES, EVENT_TYPE_WEIGHTS, PRODUCT_EVENT_TYPES

TOPIC = "clickstream"
PARTITIONS = 3
DUPLICATE_RATE = 0.03
OUT_OF_ORDER_RATE = 0.10
LATE_RATE = 0.02
POISON_RATE = 0.005
POISON_KINDS = ("not_json", "json_array", "unreadable_time", "not_utf8")
# A retried send arrives this many messages after its original, at most.
RETRY_DISTANCE = 20


def ensure_topic(bootstrap: str, topic: str, partitions: int, timeout: float = 30.0) -> bool:
    """Create `topic` when it does not exist; True when it was created."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    if topic in admin.list_topics(timeout=timeout).topics:
        return False
    try:
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(timeout)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:  # created meanwhile by another producer
            raise
        return False
    return True


class EventMaker:
    """Valid events and the mix, from one seeded random stream."""

    def __init__(self, seed: int, run: str):
        self.rng, self.run, self.n = random.Random(seed), run, 0
        self.users = [user_id(i) for i in range(1, MIN_USERS + 1)]

    def event(self, now: datetime, kind: str) -> dict:
        rng = self.rng
        self.n += 1
        event_type = rng.choices(list(EVENT_TYPE_WEIGHTS), weights=list(EVENT_TYPE_WEIGHTS.values()))[0]
        if kind == "late":
            at = now - timedelta(seconds=rng.randrange(3600, 20 * 3600))
        elif kind == "out_of_order":
            at = now - timedelta(seconds=rng.uniform(1, 120))
        else:
            at = now
        return {
            "event_id": f"e-{self.run}-{self.n:08d}",
            "user_id": rng.choice(self.users),
            "event_type": event_type,
            "event_time": at.isoformat(timespec="milliseconds"),
            "product_id": f"P{rng.randint(1, N_PRODUCTS):04d}" if event_type in PRODUCT_EVENT_TYPES else None,
            "amount": round(min(500.0, max(1.0, rng.lognormvariate(3.3, 0.9))), 2)
            if event_type == "purchase"
            else None,
            "device_type": rng.choice(DEVICES),
            "session_id": f"s-{rng.getrandbits(48):012x}",
        }

    def poison(self, kind: str, now: datetime) -> tuple[bytes | None, bytes]:
        """(key, value) of a poison message of `kind`."""
        self.n += 1
        ident = f"e-{self.run}-{self.n:08d}"
        if kind == "not_json":
            return None, f"event {ident} at {now.isoformat()}".encode()
        if kind == "json_array":
            return None, json.dumps([ident, now.isoformat()]).encode()
        if kind == "unreadable_time":
            return None, json.dumps({"event_id": ident, "user_id": self.users[0], "event_time": "yesterday"}).encode()
        return None, b"\xff\xfe" + ident.encode()


class Sender:
    """One producer sending to `topic` as the demo does (idempotent, 20 ms linger), waiting when
    librdkafka's local queue is full; `flush` raises when a message was not delivered."""

    def __init__(self, bootstrap: str, topic: str):
        from confluent_kafka import Producer

        self.bootstrap, self.topic, self.failures = bootstrap, topic, []
        self.producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 20})

    def _delivered(self, error, _message) -> None:
        if error is not None:
            self.failures.append(str(error))

    def send(self, key: bytes | None, value: bytes) -> None:
        while True:
            try:
                self.producer.produce(self.topic, key=key, value=value, on_delivery=self._delivered)
                return
            except BufferError:  # the local queue is full: let librdkafka send some
                self.producer.poll(0.1)

    def flush(self, timeout: float) -> None:
        left = self.producer.flush(timeout)
        if self.failures or left:
            raise RuntimeError(
                f"{len(self.failures) + left} message(s) not delivered to {self.topic} at {self.bootstrap}:"
                f" {self.failures[:3]}"
            )


def produce(
    bootstrap: str,
    topic: str = TOPIC,
    rate: float = 10.0,
    count: int | None = None,
    seed: int = 0,
    partitions: int = PARTITIONS,
    run: str | None = None,
    stop=lambda: False,
) -> dict:
    """Send about `rate` messages a second (`count` in all, or until `stop()`); returns what was sent."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    ensure_topic(bootstrap, topic, partitions)
    sender = Sender(bootstrap, topic)
    send, producer = sender.send, sender.producer
    maker = EventMaker(seed, run or uuid.uuid4().hex[:8])
    mix_rng = random.Random(seed + 1)
    sent: Counter = Counter()
    retries: list[tuple[int, bytes, bytes]] = []  # (send after message n, key, value)

    start = time.monotonic()
    while (count is None or sent["messages"] < count) and not stop():
        now = datetime.now(UTC)
        due = [r for r in retries if r[0] <= sent["messages"]]
        if due:
            _, key, value = due[0]
            retries.remove(due[0])
            send(key, value)
            sent["duplicates"] += 1
        elif mix_rng.random() < POISON_RATE:
            kind = POISON_KINDS[sent["poison"] % len(POISON_KINDS)]
            send(*maker.poison(kind, now))
            sent["poison"] += 1
            sent[f"poison_{kind}"] += 1
        else:
            draw = mix_rng.random()
            kind = "late" if draw < LATE_RATE else "out_of_order" if draw < LATE_RATE + OUT_OF_ORDER_RATE else "on_time"
            event = maker.event(now, kind)
            key, value = event["user_id"].encode(), json.dumps(event).encode()
            send(key, value)
            sent["unique_events"] += 1
            sent[kind] += 1
            if mix_rng.random() < DUPLICATE_RATE:
                retries.append((sent["messages"] + 1 + mix_rng.randrange(RETRY_DISTANCE), key, value))
        sent["messages"] += 1
        producer.poll(0)
        # Paced: message n leaves at start + n / rate, never in a burst to catch up after a pause.
        ahead = start + sent["messages"] / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        elif ahead < -1.0:
            start = time.monotonic() - sent["messages"] / rate
    # Retries still pending when a counted run ends are dropped: they were never sent.
    sender.flush(30)
    return {"topic": topic, "messages": sent["messages"], **{k: v for k, v in sorted(sent.items()) if k != "messages"}}


def run_until_stopped(bootstrap: str, **options) -> dict:
    """`produce` until SIGTERM or Ctrl-C."""
    stopped = [False]

    def _stop(*_):
        stopped[0] = True

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop)
    return produce(bootstrap, stop=lambda: stopped[0], **options)
