"""Online lookup latency: one entity and 100 entities, through the Python API and the HTTP endpoint.

Starts its own Redis (Debian's redis-server, `ml_platform.demo.redis_server`), writes `--entities`
users' rows of the `user_activity` view (11 features: floats, ints, strings, nulls) through
`RedisOnlineStore.write`, as the serving asset does, and times lookups of all 11 features, one
request after another on one connection, after a warm-up:

- `store.read`: `RedisOnlineStore.read` with pseudonymized keys (one Lua script, one round trip);
- `online_vectors`: what the HTTP endpoint calls: ids pseudonymized in Python, then `read`;
- `get_online_features`: the DataFrame API (adds building the DataFrame as the warehouse path shapes it);
- `http GET` (1 entity) / `http POST` (100): the endpoint (`ml_platform.training.online_server`) in
  this process's threads, a keep-alive `http.client` connection, JSON decoded.

Writing them is timed too (`write_rows_per_second`: batches of 5 000 rows, as the serving asset
sends them). Entities are drawn at random (fixed seed) among those written. Medians and 99th percentiles in
milliseconds go to `--output` (JSON, with the machine) and a Markdown table to stdout. The issue's
targets: one entity p99 <= 2 ms through the Python API, <= 5 ms over HTTP.

    .venv/bin/python benchmarks/online_lookup_bench.py                      # about a minute
    .venv/bin/python benchmarks/online_lookup_bench.py --repeat 300 --entities 2000   # a quick look
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform as stdlib_platform
import random
import statistics
import sys
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
VIEW = "user_activity"


def _percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 3),
        "n": len(ordered),
    }


def _time(call, repeat: int, warmup: int) -> dict:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return _percentiles(samples)


def _rows(count: int, now: dt.datetime, rng: random.Random):
    from ml_platform import privacy
    from ml_platform.online_store import OnlineRow

    for i in range(count):
        purchases = rng.randint(0, 40)
        spend = round(rng.uniform(0, 2000), 2) if purchases else 0.0
        yield OnlineRow(
            key=(privacy.pseudonym_of(f"u{i}"),),
            ts=now.replace(hour=0, minute=0, second=0, microsecond=0),
            values={
                "lifetime_value": spend,
                "purchases": purchases,
                "avg_order_value": spend / purchases if purchases else None,
                "days_since_last_purchase": rng.randint(1, 90) if purchases else None,
                "spend_7d": rng.uniform(0, 300),
                "spend_30d": rng.uniform(0, 900),
                "events_7d": rng.randint(0, 200),
                "events_30d": rng.randint(0, 800),
                "sessions_30d": rng.randint(0, 60),
                "plan": rng.choice(["free", "pro", None]),
                "country": rng.choice(["DE", "US", "FR", "BR"]),
            },
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=100_000, help="users written to Redis")
    parser.add_argument("--repeat", type=int, default=2000, help="timed lookups per case")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "online_lookup.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("ML_PLATFORM_PSEUDONYM_KEY", "benchmark-pseudonym-key-0123456789abcdef")

    from ml_platform import privacy
    from ml_platform.demo.redis_server import redis_server
    from ml_platform.online_store import RedisOnlineStore
    from ml_platform.training import feature_views, get_online_features
    from ml_platform.training.online import online_vectors
    from ml_platform.training.online_server import start_server

    views = feature_views()
    view = views[VIEW]
    names = [f"{VIEW}:{f}" for f in view.features]
    rng = random.Random(args.seed)
    results: dict = {}
    with redis_server() as server:
        store = RedisOnlineStore(server.url)
        now = store.now()
        rows = list(_rows(args.entities, now, rng))
        started = time.perf_counter()
        for i in range(0, len(rows), 5000):
            store.write(VIEW, view.ttl, rows[i : i + 5000])
        results["write_rows_per_second"] = round(args.entities / (time.perf_counter() - started))
        ids = [f"u{rng.randrange(args.entities)}" for _ in range(args.repeat + args.warmup + 100)]
        draws = iter(range(10**9))

        def one_id() -> str:
            return ids[next(draws) % len(ids)]

        def hundred() -> list[str]:
            start = next(draws) % (len(ids) - 100)
            return ids[start : start + 100]

        keys = {u: (privacy.pseudonym_of(u),) for u in ids}
        cases = {
            "store.read 1": lambda: store.read(VIEW, [keys[one_id()]], view.features, view.ttl),
            "store.read 100": lambda: store.read(VIEW, [keys[u] for u in hundred()], view.features, view.ttl),
            "online_vectors 1": lambda: online_vectors(store, {"user_id": [one_id()]}, names, views=views),
            "online_vectors 100": lambda: online_vectors(store, {"user_id": hundred()}, names, views=views),
            "get_online_features 1": lambda: get_online_features(
                None, pd.DataFrame({"user_id": [one_id()]}), names, views=views, store=store
            ),
            "get_online_features 100": lambda: get_online_features(
                None, pd.DataFrame({"user_id": hundred()}), names, views=views, store=store
            ),
        }
        endpoint, thread = start_server(store, views=views)
        connection = http.client.HTTPConnection("127.0.0.1", endpoint.server_address[1])
        query = "features=" + ",".join(names)

        def http_get_one():
            connection.request("GET", f"/features?{query}&user_id={one_id()}")
            answer = connection.getresponse()
            body = json.loads(answer.read())
            assert answer.status == 200, body

        def http_post_hundred():
            payload = json.dumps({"features": names, "entities": {"user_id": hundred()}})
            connection.request("POST", "/features", payload, {"Content-Type": "application/json"})
            answer = connection.getresponse()
            body = json.loads(answer.read())
            assert answer.status == 200 and len(body["entities"]) == 100, body

        cases["http GET 1"] = http_get_one
        cases["http POST 100"] = http_post_hundred
        try:
            for name, call in cases.items():
                repeat = args.repeat if name.endswith(" 1") else max(args.repeat // 4, 50)
                results[name] = _time(call, repeat, args.warmup)
                print(f"{name}: {results[name]}", file=sys.stderr, flush=True)
        finally:
            connection.close()
            endpoint.shutdown()
            thread.join()
            endpoint.server_close()
            store.close()
    report = {
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": stdlib_platform.python_version(),
            "system": stdlib_platform.platform(),
            "load_average_1m": os.getloadavg()[0],
        },
        "entities_written": args.entities,
        "features": len(view.features),
        "targets": {"python_api_1_p99_ms": 2.0, "http_1_p99_ms": 5.0},
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print("| lookup | p50 ms | p99 ms |\n| --- | ---: | ---: |")
    for name, figures in results.items():
        if isinstance(figures, dict):
            print(f"| {name} | {figures['p50_ms']} | {figures['p99_ms']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
