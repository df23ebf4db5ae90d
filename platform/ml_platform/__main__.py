"""`python -m ml_platform <command>`: the platform's command line.

- `metrics [--port N] [--host H]`: serves the Prometheus metrics (`ml_platform.monitoring.metrics`)
  on http://H:N/metrics. It reads the Dagster instance of `DAGSTER_HOME` (as `dagster dev` does)
  and the code location's sources and checks. `make dev` starts it beside Dagster on
  `ML_PLATFORM_METRICS_PORT` (9108). It stops on SIGTERM or Ctrl-C.

- `serve [--port N] [--host H]`: serves the online features as JSON on http://H:N/features
  (`ml_platform.training.online_server`), read from the Redis `ML_PLATFORM_REDIS_URL` names; without
  it, it says so and exits with status 2. `make dev` starts it on `ML_PLATFORM_SERVE_PORT` (8766)
  beside Redis. It stops on SIGTERM or Ctrl-C.

It sits above the code location (it loads the definitions), so monitoring itself never imports them.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

import dagster as dg
from prometheus_client import CollectorRegistry, start_http_server

from ml_platform import settings
from ml_platform.declarations import discover_specs
from ml_platform.definitions import build_definitions
from ml_platform.ingestion.kafka import KafkaSourceSpec
from ml_platform.monitoring.metrics import PlatformCollector, SourceAssets


def collector_for(instance: dg.DagsterInstance, defs: dg.Definitions) -> PlatformCollector:
    """The collector over the code location's sources (from their raw and clean assets) and checks."""
    graph = defs.resolve_asset_graph()
    sources = [
        SourceAssets(s.name, s.raw_table, s.clean_table, s.is_partitioned, streaming=isinstance(s, KafkaSourceSpec))
        for s in discover_specs()
    ]
    checks = {key: graph.get(key).partitions_def is not None for key in graph.asset_check_keys}
    return PlatformCollector(instance, sources, checks)


def serve_metrics(host: str, port: int) -> None:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with dg.DagsterInstance.get() as instance:
        registry = CollectorRegistry()
        registry.register(collector_for(instance, build_definitions()))
        server, _ = start_http_server(port, addr=host, registry=registry)
        print(f"metrics on http://{host}:{port}/metrics", flush=True)
        try:
            stop.wait()
        finally:
            server.shutdown()


def serve_features(host: str, port: int) -> int:
    from ml_platform.online_store import configured_store
    from ml_platform.training.online_server import start_server

    store = configured_store()
    if store is None:
        print("no online store: set ML_PLATFORM_REDIS_URL (e.g. redis://127.0.0.1:6379/0)", file=sys.stderr, flush=True)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server, thread = start_server(store, host, port)
    print(f"online features on {server.url}/features (from {store.location})", flush=True)
    try:
        stop.wait()
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ml_platform", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    metrics = commands.add_parser("metrics", help="serve the Prometheus metrics")
    metrics.add_argument("--port", type=int, default=settings.metrics_port())
    metrics.add_argument("--host", default="127.0.0.1")
    serve = commands.add_parser("serve", help="serve the online features over HTTP, from Redis")
    serve.add_argument("--port", type=int, default=settings.serve_port())
    serve.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    if args.command == "metrics":
        serve_metrics(args.host, args.port)
    elif args.command == "serve":
        return serve_features(args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
