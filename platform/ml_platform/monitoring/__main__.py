"""`python -m ml_platform.monitoring [--port N]`: serves the metrics on http://127.0.0.1:N/metrics.

It reads the Dagster instance of `DAGSTER_HOME` (as `dagster dev` does) and the code location's
sources and checks. `make dev` starts it beside Dagster on `ML_PLATFORM_METRICS_PORT` (9108).
It stops on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import signal
import threading

import dagster as dg
from prometheus_client import CollectorRegistry, start_http_server

from ml_platform import settings
from ml_platform.monitoring.metrics import PlatformCollector, SourceAssets


def collector_for(instance: dg.DagsterInstance, defs: dg.Definitions) -> PlatformCollector:
    """The collector over the code location's sources (from their raw and clean assets) and checks."""
    from ml_platform.discovery import discover_specs

    graph = defs.resolve_asset_graph()
    sources = [SourceAssets(s.name, s.raw_table, s.clean_table, s.is_partitioned) for s in discover_specs()]
    checks = {key: graph.get(key).partitions_def is not None for key in graph.asset_check_keys}
    return PlatformCollector(instance, sources, checks)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ml_platform.monitoring", description=__doc__)
    parser.add_argument("--port", type=int, default=settings.metrics_port())
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    # Imported here: the definitions import this package (its sensors).
    from ml_platform.definitions import build_definitions

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with dg.DagsterInstance.get() as instance:
        registry = CollectorRegistry()
        registry.register(collector_for(instance, build_definitions()))
        server, _ = start_http_server(args.port, addr=args.host, registry=registry)
        print(f"metrics on http://{args.host}:{args.port}/metrics", flush=True)
        try:
            stop.wait()
        finally:
            server.shutdown()


if __name__ == "__main__":
    main()
