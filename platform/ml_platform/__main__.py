"""`python -m ml_platform <command>`: the platform's command line.

- `metrics [--port N] [--host H]`: serves the Prometheus metrics (`ml_platform.monitoring.metrics`)
  on http://H:N/metrics. It reads the Dagster instance of `DAGSTER_HOME` (as `dagster dev` does)
  and the code location's sources and checks. `make dev` starts it beside Dagster on
  `ML_PLATFORM_METRICS_PORT` (9108). It stops on SIGTERM or Ctrl-C.

It sits above the code location (it loads the definitions), so monitoring itself never imports them.
"""

from __future__ import annotations

import argparse
import signal
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ml_platform", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    metrics = commands.add_parser("metrics", help="serve the Prometheus metrics")
    metrics.add_argument("--port", type=int, default=settings.metrics_port())
    metrics.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    if args.command == "metrics":
        serve_metrics(args.host, args.port)


if __name__ == "__main__":
    main()
