"""`python -m ml_platform <command>`: the platform's command line.

- `metrics [--port N] [--host H]`: serves the Prometheus metrics (`ml_platform.monitoring.metrics`)
  on http://H:N/metrics. It reads the Dagster instance of `DAGSTER_HOME` (as `dagster dev` does)
  and the code location's sources and checks. `make dev` starts it beside Dagster on
  `ML_PLATFORM_METRICS_PORT` (9108). It stops on SIGTERM or Ctrl-C.

- `serve [--port N] [--host H]`: serves the online features as JSON on http://H:N/features
  (`ml_platform.training.online_server`), read from the Redis `ML_PLATFORM_REDIS_URL` names; without
  it, it says so and exits with status 2. `make dev` starts it on `ML_PLATFORM_SERVE_PORT` (8766)
  beside Redis. It stops on SIGTERM or Ctrl-C.

- `audit [--since 7d] [--table NAME ...] [--no-record]`: the consistency audit
  (`ml_platform.curated.audit`): every curated table's partitions (stream feature views are not
  audited: that module says why) of the last N days recomputed from
  what they declare they read, in a scratch database, and compared with the warehouse row by row.
  It prints each partition that differs and why, records the result as each table's `audit` check
  evaluation in the Dagster instance of `DAGSTER_HOME` (so the UI and the metrics show it; not with
  `--no-record` or without `DAGSTER_HOME`), and exits with 1 when a partition differs. Run it with
  the platform's environment (`ML_PLATFORM_DATA_DIR`, the pseudonym key; `make dev`'s key is read
  from `$DAGSTER_HOME/pseudonym_key` when the variable is unset).

It sits above the code location (it loads the definitions), so monitoring itself never imports them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import sys
import threading
from pathlib import Path

import dagster as dg
from prometheus_client import CollectorRegistry, start_http_server

from ml_platform import privacy, settings
from ml_platform.checks.audit import AUDIT_CHECK
from ml_platform.curated.audit import audit_tables
from ml_platform.declarations import discover_curated_tables, discover_labels, discover_specs, discover_stream_views
from ml_platform.definitions import build_definitions, partition_columns
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


def _days(text: str) -> int:
    """`7d` or `7`: a number of days."""
    number = text.removesuffix("d")
    if not number.isdigit() or int(number) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a number of days such as 7d")
    return int(number)


def run_audit(since_days: int, tables: list[str] | None, record: bool) -> int:
    """The audit command (module docstring); its exit status."""
    if settings.pseudonym_key() is None and os.environ.get("DAGSTER_HOME"):
        kept = Path(os.environ["DAGSTER_HOME"]) / "pseudonym_key"
        if kept.is_file():  # the key `make dev` made on its first start
            os.environ[privacy.KEY_VARIABLE] = kept.read_text().strip()
    curated = [*discover_curated_tables(), *discover_labels()]
    unknown = sorted(set(tables or ()) - {t.name for t in curated})
    streamed = sorted(set(unknown) & {v.name for v in discover_stream_views()})
    if streamed:
        print(f"{', '.join(streamed)}: stream feature views are not audited (ml_platform.curated.audit says why)")
        return 2
    if unknown:
        print(f"no curated table {unknown}; the tables are: {', '.join(sorted(t.name for t in curated))}")
        return 2
    chosen = [t for t in curated if not tables or t.name in tables]
    today = dt.datetime.now(dt.UTC).date()
    days = [today - dt.timedelta(days=i) for i in range(since_days - 1, -1, -1)]
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else None
    try:
        results = audit_tables(
            settings.warehouse_path(), chosen, partition_columns(discover_specs(), curated), days, instance
        )
        findings = [f for r in results for f in r.findings]
        print(
            f"audit of {len(results)} tables, {days[0]} .. {days[-1]}: "
            f"{sum(len(r.checked) for r in results)} partitions checked, {len(findings)} differ"
        )
        for finding in findings:
            print(f"  {finding.line()}")
        if record and instance is not None:
            for result in results:
                instance.report_runless_asset_event(result.verdict.evaluation(dg.AssetKey(result.table), AUDIT_CHECK))
    finally:
        if instance is not None:
            instance.dispose()
    return 1 if findings else 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ml_platform", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    metrics = commands.add_parser("metrics", help="serve the Prometheus metrics")
    metrics.add_argument("--port", type=int, default=settings.metrics_port())
    metrics.add_argument("--host", default="127.0.0.1")
    serve = commands.add_parser("serve", help="serve the online features over HTTP, from Redis")
    serve.add_argument("--port", type=int, default=settings.serve_port())
    serve.add_argument("--host", default="127.0.0.1")
    audit = commands.add_parser("audit", help="recompute curated partitions from their inputs and compare")
    audit.add_argument("--since", type=_days, default=7, help="the last N days, today included (default 7d)")
    audit.add_argument("--table", action="append", help="only this table (repeatable; default: every one)")
    audit.add_argument("--no-record", action="store_true", help="do not record the result in Dagster")
    args = parser.parse_args(argv)
    if args.command == "metrics":
        serve_metrics(args.host, args.port)
    elif args.command == "serve":
        return serve_features(args.host, args.port)
    elif args.command == "audit":
        return run_audit(args.since, args.table, record=not args.no_record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
