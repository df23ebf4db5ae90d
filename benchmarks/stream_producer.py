"""The stream benchmark's producer: the demo's clickstream at a sustained rate, in a process of its own.

    .venv/bin/python benchmarks/stream_producer.py --bootstrap HOST:PORT --rate 10000 --seconds 180 --out FILE

The demo's producer (`python -m ml_platform.demo stream`) builds every event with Python's random
module and `json.dumps`: about 18 k messages/s on one busy core of this machine class, short of
the benchmark's 50 k. This sends the same events (`ml_platform.demo.stream.EventMaker`: users,
types, products, amounts) and the same mix (duplicates as producer retries, out-of-order and late
events, the occasional poison message), but made once into a pool of templates (`--pool`): each
message fills in a unique event id (`e-bench<seed>-<n>`: producers with different seeds never
collide) and the current event time, so the per-message cost is a
string join and librdkafka's `produce`. Same client settings as the demo (idempotent, linger 20 ms).

Pacing: every `SLICE_SECONDS` it sends what is due since the start (rate x elapsed), so a slow
moment is caught up in the next slices rather than lost; when it falls more than a second behind
it stops catching up (as the demo does), and the shortfall shows in the achieved rate. The Kafka
timestamp of each message is set by the client when `produce` is called: the moment the benchmark's
latencies count from.

Writes `--out` (JSON): messages sent by kind, the achieved rate, when sending started and ended
(Unix time), and the messages sent in each second (the production side of the lag timeline).
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from ml_platform.demo.stream import (
    DUPLICATE_RATE,
    LATE_RATE,
    OUT_OF_ORDER_RATE,
    POISON_KINDS,
    POISON_RATE,
    RETRY_DISTANCE,
    TOPIC,
    EventMaker,
    Sender,
)

SLICE_SECONDS = 0.01
ID_MARK, TIME_MARK = "@@ID@@", "@@TIME@@"


def templates(pool: int, seed: int) -> list[tuple[str, bytes | None, list[bytes], float | None]]:
    """`pool` messages as (kind, key, value parts, event-time offset in seconds before now).

    A valid event's value is `parts[0] + id + parts[1] + time + parts[2]`; poison is sent as is."""
    maker, mix = EventMaker(seed, "bench"), random.Random(seed + 1)
    now = datetime.now(UTC)
    made = []
    for _ in range(pool):
        if mix.random() < POISON_RATE:
            kind = POISON_KINDS[len(made) % len(POISON_KINDS)]
            key, value = maker.poison(kind, now)
            made.append(("poison", key, [value], None))
            continue
        draw = mix.random()
        kind = "late" if draw < LATE_RATE else "out_of_order" if draw < LATE_RATE + OUT_OF_ORDER_RATE else "on_time"
        event = maker.event(now, kind)
        offset = (now - datetime.fromisoformat(event["event_time"])).total_seconds()
        event |= {"event_id": ID_MARK, "event_time": TIME_MARK}
        head, rest = json.dumps(event).split(ID_MARK)
        middle, tail = rest.split(TIME_MARK)
        made.append((kind, event["user_id"].encode(), [head.encode(), middle.encode(), tail.encode()], offset))
    return made


def produce(bootstrap: str, topic: str, rate: float, seconds: float, pool: int, seed: int) -> dict:
    made = templates(pool, seed)
    sender = Sender(bootstrap, topic)
    send, producer = sender.send, sender.producer
    mix = random.Random(seed + 2)
    sent: Counter = Counter()
    per_second: Counter = Counter()
    retries: list[tuple[int, bytes | None, bytes]] = []
    stopped = [False]
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.__setitem__(0, True))

    n = 0
    started = time.time()
    start = time.monotonic()
    while not stopped[0]:
        elapsed = time.monotonic() - start
        if elapsed >= seconds:
            break
        due = int(rate * elapsed) - n
        if due < -rate:  # more than a second behind: stop catching up (the achieved rate shows it)
            start = time.monotonic() - n / rate
            continue
        if due > 0:
            now = datetime.now(UTC)
            stamp = now.isoformat(timespec="milliseconds").encode()
            second = int(time.time())
            for _ in range(due):
                if retries and retries[0][0] <= n:
                    _, key, value = retries.pop(0)
                    send(key, value)
                    sent["duplicates"] += 1
                else:
                    kind, key, parts, offset = made[n % len(made)]
                    if kind == "poison":
                        value = parts[0]
                    else:
                        at = (
                            stamp
                            if not offset
                            else (now - timedelta(seconds=offset)).isoformat(timespec="milliseconds").encode()
                        )
                        value = b"".join((parts[0], b"e-bench%d-%09d" % (seed, n), parts[1], at, parts[2]))
                        if mix.random() < DUPLICATE_RATE:
                            retries.append((n + 1 + mix.randrange(RETRY_DISTANCE), key, value))
                            retries.sort(key=lambda r: r[0])
                    send(key, value)
                    sent[kind] += 1
                n += 1
            per_second[second] += due
            producer.poll(0)
        time.sleep(SLICE_SECONDS)
    ended = time.time()
    sender.flush(60)
    return {
        "topic": topic,
        "target_rate": rate,
        "messages": n,
        "by_kind": dict(sorted(sent.items())),
        "started_at": started,
        "ended_at": ended,
        "achieved_rate": round(n / (ended - started), 1),
        "per_second": {str(k): v for k, v in sorted(per_second.items())},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", default=TOPIC)
    parser.add_argument("--rate", type=float, required=True, help="messages per second")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--pool", type=int, default=20_000, help="distinct event templates")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    result = produce(args.bootstrap, args.topic, args.rate, args.seconds, args.pool, args.seed)
    with open(args.out, "w") as out:
        json.dump(result, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
