"""Online lookup latency: one entity and 100 entities, through the Python API and the HTTP endpoint.

Starts its own Redis (Debian's redis-server, `ml_platform.demo.redis_server`), writes `--entities`
users' rows of the `user_activity` view (11 features: floats, ints, strings, nulls) through
`RedisOnlineStore.write`, as the serving asset does, and times lookups of all 11 features, one
request after another on one connection, after a warm-up:

- `store.read`: `RedisOnlineStore.read` with pseudonymized keys (one Lua script, one round trip);
- `online_vectors`: what the HTTP endpoint calls: ids pseudonymized in Python, then `read`;
- `get_online_features`: the DataFrame API (adds building the DataFrame as the warehouse path shapes it),
  given the ids as lists (`{"user_id": [...]}`, what a model server has, as Feast's `entity_rows`
  are plain values), and `get_online_features frame`: the same given a DataFrame of the ids, built in
  the timed call;
- `http GET` (1 entity) / `http POST` (100): the endpoint (`ml_platform.training.online_server`) in
  this process's threads, a keep-alive `http.client` connection, JSON decoded.

Writing them is timed too (`write_rows_per_second`: batches of 5 000 rows, as the serving asset
sends them). Entities are drawn at random (fixed seed) among those written.

Feast's Redis online store gets the same rows on a second Redis server the harness starts: its side
runs in `.venv-bench` (Feast 0.67 cannot live in `.venv`), as `feast_lookup_worker.py`, after the
platform's cases, with the same entity draws; the entity key there is the plain user id (Feast does not
pseudonymize). The vectors of a few entities from both stores must be equal (null for null), else the
run fails. `--no-feast` (or no `.venv-bench`) measures the platform alone.

Medians and 99th percentiles in milliseconds go to `--output` (JSON, with the machine) and Markdown
tables to stdout: every case, then the comparison (`get_online_features` as a DataFrame against Feast's
`to_df()`, the JSON-ready vectors of `online_vectors` against Feast's `to_dict()`) with the ratios
Feast / platform. The issue's targets: one entity p99 <= 2 ms through the Python API, <= 5 ms over
HTTP, and no slower than Feast's Redis store on the same data.

    make .venv-bench/.installed                                             # Feast's side, once
    .venv/bin/python benchmarks/online_lookup_bench.py                      # a few minutes
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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the sibling module, whatever the working directory
from lookup_timing import Draws, time_call  # noqa: E402

REPO = HERE.parent
BENCH_PYTHON = REPO / ".venv-bench" / "bin" / "python"
VIEW = "user_activity"
# The kinds of the generated values (`_rows`), for Feast's schema.
FEATURE_KINDS = {
    "lifetime_value": "float",
    "purchases": "int",
    "avg_order_value": "float",
    "days_since_last_purchase": "int",
    "spend_7d": "float",
    "spend_30d": "float",
    "events_7d": "int",
    "events_30d": "int",
    "sessions_30d": "int",
    "plan": "str",
    "country": "str",
}
# Platform case beside Feast case, per entity count: (shown as, platform, Feast).
PAIRS = [
    ("get_online_features (DataFrame) vs to_df()", "get_online_features", "to_df"),
    ("get_online_features, ids in a DataFrame, vs to_df()", "get_online_features frame", "to_df"),
    ("online_vectors (JSON-ready) vs to_dict()", "online_vectors", "to_dict"),
]
CHECKED_ENTITIES = 50


def _rows(count: int, now: dt.datetime, rng: random.Random):
    """The rows of users u0 .. u{count-1}, in that order."""
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


def _feast_side(rows: list, users: list[str], ttl: dt.timedelta, ids: list[str], args) -> dict:
    """Feast's figures: the same rows into its Redis online store (a server of its own), timed in `.venv-bench`."""
    from ml_platform.demo.redis_server import redis_server

    frame = pd.DataFrame([row.values for row in rows], columns=list(FEATURE_KINDS))
    for name, kind in FEATURE_KINDS.items():
        # Nullable integers, so that Parquet keeps them integers with nulls.
        frame[name] = frame[name].astype({"int": "Int64", "float": "float64", "str": "string"}[kind])
    frame.insert(0, "event_timestamp", pd.Series([row.ts for row in rows], dtype="datetime64[us, UTC]"))
    frame.insert(0, "user_id", users)
    with tempfile.TemporaryDirectory(prefix="lookup_feast_") as work, redis_server() as server:
        work_dir = Path(work)
        frame.to_parquet(work_dir / "rows.parquet", index=False)
        spec = {
            "redis": server.url.removeprefix("redis://").split("/")[0],
            "view": VIEW,
            "features": FEATURE_KINDS,
            "ttl_seconds": ttl.total_seconds(),
            "rows_parquet": str(work_dir / "rows.parquet"),
            "ids": ids,
            "check_ids": ids[:CHECKED_ENTITIES],
            "repeat_one": args.repeat,
            "repeat_hundred": max(args.repeat // 4, 50),
            "warmup": args.warmup,
        }
        (work_dir / "spec.json").write_text(json.dumps(spec))
        command = [str(BENCH_PYTHON), str(HERE / "feast_lookup_worker.py"), str(work_dir / "spec.json")]
        subprocess.run([*command, str(work_dir / "result.json")], check=True)
        return json.loads((work_dir / "result.json").read_text())


def _check_equal(platform_vectors: dict, feast_vectors: dict) -> list[str]:
    """Where the two stores' vectors of the same entities differ (empty when they agree, null for null)."""
    differences = []
    for user, vector in platform_vectors.items():
        for ref, value in vector.items():
            theirs = feast_vectors.get(user, {}).get(ref)
            if value != theirs or (value is None) != (theirs is None):
                differences.append(f"{user} {ref}: platform {value!r}, Feast {theirs!r}")
    return differences


def _comparison(results: dict, feast: dict) -> list[dict]:
    lines = []
    for shown, ours, theirs in PAIRS:
        for count in (1, 100):
            mine, other = results[f"{ours} {count}"], feast[f"{theirs} {count}"]
            lines.append(
                {
                    "lookup": f"{shown}, {count}",
                    "platform_p50_ms": mine["p50_ms"],
                    "platform_p99_ms": mine["p99_ms"],
                    "feast_p50_ms": other["p50_ms"],
                    "feast_p99_ms": other["p99_ms"],
                    "feast_over_platform_p50": round(other["p50_ms"] / mine["p50_ms"], 2),
                    "feast_over_platform_p99": round(other["p99_ms"] / mine["p99_ms"], 2),
                }
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=100_000, help="users written to Redis")
    parser.add_argument("--repeat", type=int, default=2000, help="timed lookups per case")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "online_lookup.json")
    parser.add_argument("--no-feast", action="store_true", help="the platform alone (no .venv-bench needed)")
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
        draws = Draws(ids)
        one_id, hundred = draws.one, draws.hundred

        keys = {u: (privacy.pseudonym_of(u),) for u in ids}
        cases = {
            "store.read 1": lambda: store.read(VIEW, [keys[one_id()]], view.features, view.ttl),
            "store.read 100": lambda: store.read(VIEW, [keys[u] for u in hundred()], view.features, view.ttl),
            "online_vectors 1": lambda: online_vectors(store, {"user_id": [one_id()]}, names, views=views),
            "online_vectors 100": lambda: online_vectors(store, {"user_id": hundred()}, names, views=views),
            "get_online_features 1": lambda: get_online_features(
                None, {"user_id": [one_id()]}, names, views=views, store=store
            ),
            "get_online_features 100": lambda: get_online_features(
                None, {"user_id": hundred()}, names, views=views, store=store
            ),
            "get_online_features frame 1": lambda: get_online_features(
                None, pd.DataFrame({"user_id": [one_id()]}), names, views=views, store=store
            ),
            "get_online_features frame 100": lambda: get_online_features(
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
                results[name] = time_call(call, repeat, args.warmup)
                print(f"{name}: {results[name]}", file=sys.stderr, flush=True)
            checked = online_vectors(store, {"user_id": ids[:CHECKED_ENTITIES]}, names, views=views)
        finally:
            connection.close()
            endpoint.shutdown()
            thread.join()
            endpoint.server_close()
            store.close()
    feast, platform_vectors = None, {}
    if not args.no_feast:
        if not BENCH_PYTHON.exists():
            print(
                f"no {BENCH_PYTHON.relative_to(REPO)}: run `make .venv-bench/.installed`, or pass --no-feast",
                file=sys.stderr,
            )
            return 2
        users = [f"u{i}" for i in range(args.entities)]
        feast = _feast_side(rows, users, view.ttl, ids, args)
        platform_vectors = dict(zip(ids[:CHECKED_ENTITIES], checked.vectors, strict=True))
        differences = _check_equal(platform_vectors, feast.pop("check"))
        if differences:
            print("the two stores disagree:\n" + "\n".join(differences[:20]), file=sys.stderr)
            return 1
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
        "targets": {"python_api_1_p99_ms": 2.0, "http_1_p99_ms": 5.0, "no_slower_than_feast": True},
        "results": results,
    }
    if feast is not None:
        report["feast"] = {"entities_checked_equal": len(platform_vectors), **feast}
        report["comparison"] = _comparison(results, feast)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print("| lookup | p50 ms | p99 ms |\n| --- | ---: | ---: |")
    for name, figures in results.items():
        if isinstance(figures, dict):
            print(f"| {name} | {figures['p50_ms']} | {figures['p99_ms']} |")
    if feast is not None:
        print(f"\nwrite rows/s: platform {results['write_rows_per_second']}, Feast {feast['write_rows_per_second']}\n")
        print("| lookup, entities | platform p50 | platform p99 | Feast p50 | Feast p99 | Feast/platform p50 | p99 |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for line in report["comparison"]:
            print("| " + " | ".join(str(value) for value in line.values()) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
