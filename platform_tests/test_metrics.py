"""Prometheus metrics: the real server (`python -m ml_platform metrics`) scraped over HTTP.

Real runs of the events source (monitoring_scenario) on a Dagster instance in a temporary
DAGSTER_HOME; the metrics server runs as its own process against that home, as `make dev` starts
it, and is scraped while this test holds the warehouse's write lock: it reads only the instance.
"""

from __future__ import annotations

import os
import selectors
import socket
import subprocess
import sys
import time
import urllib.request

import dagster as dg
import duckdb
import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers import run_check
from monitoring_scenario import BROKEN_DAY, HALF_DAY, LATE_DAY, events_runner, run_broken_day, run_week

SOURCES = ["events", "maintenance", "products", "stream_events", "telemetry", "transactions", "users", "weather"]


@pytest.fixture
def instance(home_instance):
    # The server process opens the same storage through DAGSTER_HOME.
    return home_instance


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(home, data_dir):
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "ML_PLATFORM_DATA_DIR": str(data_dir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "ml_platform", "metrics", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout=60) and process.stdout.readline()
        assert ready == f"metrics on http://127.0.0.1:{port}/metrics\n", ready
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0  # SIGTERM stops it cleanly


def _scrape(url: str, warehouse) -> dict[str, dict[tuple, float]]:
    """metric name -> {label values: value}, read while another connection holds the warehouse's
    write lock (a reader of the warehouse would fail to connect)."""
    lock = duckdb.connect(str(warehouse))
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.headers["Content-Type"].startswith("text/plain")
            text = response.read().decode()
    finally:
        lock.close()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def _by(metric: dict, label: str) -> dict:
    return {dict(labels)[label]: value for labels, value in metric.items()}


def _landing_check(runner) -> dg.AssetChecksDefinition:
    [check] = [a for a in runner.defs.assets if isinstance(a, dg.AssetChecksDefinition)]
    return check


def _duration(instance, run_id: str) -> float:
    record = instance.get_run_record_by_id(run_id)
    return record.end_time - record.start_time


def test_scraped_metrics_are_the_runs_figures(instance, data_dir, server, defs):
    runner = events_runner(instance, data_dir)
    (raw_week, clean_week), (raw_day, clean_day) = run_week(runner), run_broken_day(runner)
    # The broken day's raw run again, with the raw asset's landing_freshness check: it records
    # when the newest landed file arrived.
    raw_again = dg.materialize(
        [runner.defs.get_assets_def("raw_events"), _landing_check(runner)],
        instance=instance,
        resources=runner.defs.resources,
        partition_key=BROKEN_DAY,
    )
    landed_at = run_check(raw_again, "raw_events", "landing_freshness").metadata["landed_at"].value
    newest_file = data_dir / "landing" / "events" / BROKEN_DAY / "events.csv"
    assert landed_at == pytest.approx(max(newest_file.stat().st_mtime, newest_file.stat().st_ctime), abs=1e-3)
    before = time.time()
    metrics = _scrape(server, data_dir / "warehouse.duckdb")
    after = time.time()

    # 7 days of 400 rows but the half day's 200, and the broken day's 400.
    assert _by(metrics["ml_platform_rows_ingested"], "source") == {s: (3000 if s == "events" else 0) for s in SOURCES}
    # Its 44 rows that break the contract are quarantined; every other row is accepted.
    assert _by(metrics["ml_platform_rows_quarantined"], "source") == {s: (44 if s == "events" else 0) for s in SOURCES}
    assert _by(metrics["ml_platform_rows_accepted"], "source") == {s: (2956 if s == "events" else 0) for s in SOURCES}

    runs = _by(metrics["ml_platform_runs"], "status")
    assert runs == {s.value: {"SUCCESS": 4, "FAILURE": 1}.get(s.value, 0) for s in dg.DagsterRunStatus}
    durations = {r.run_id: _duration(instance, r.run_id) for r in (raw_week, clean_week, raw_day, clean_day, raw_again)}
    assert _by(metrics["ml_platform_last_run_duration_seconds"], "asset") == {
        "raw_events": durations[raw_again.run_id],
        "clean_events": durations[clean_day.run_id],
    }
    assert _by(metrics["ml_platform_last_run_failed"], "asset") == {"raw_events": 0, "clean_events": 1}
    ordered = sorted(durations.values())
    assert _by(metrics["ml_platform_recent_run_duration_seconds"], "quantile") == {
        "0.5": ordered[2],
        # Between the 4th and 5th of the 5, 60 % of the way (linear interpolation).
        "0.9": pytest.approx(ordered[3] + (ordered[4] - ordered[3]) * 0.6, rel=1e-12),
        "1": ordered[4],
    }

    failing = {
        (dict(labels)["asset"], dict(labels)["check"], dict(labels)["severity"]): value
        for labels, value in metrics["ml_platform_failing_checks"].items()
    }
    assert {key: value for key, value in failing.items() if value} == {
        ("clean_events", "volume", "ERROR"): 1,  # the half day
        ("clean_events", "late_arrivals", "WARN"): 1,  # the late day
        ("clean_events", "contract", "ERROR"): 1,  # the broken day
    }
    # Every check of the code location has its series, 0 when nothing fails.
    graph = defs.resolve_asset_graph()
    assert set(failing) == {
        (k.asset_key.to_user_string(), k.name, severity)
        for k in graph.asset_check_keys
        for severity in ("ERROR", "WARN")
    }

    # Freshness: from when the newest data landed; the last ingestion is the later raw run.
    [ingested] = instance.fetch_materializations(dg.AssetKey("raw_events"), limit=1).records
    assert ingested.run_id == raw_again.run_id
    assert metrics["ml_platform_last_ingestion_timestamp_seconds"] == {(("source", "events"),): ingested.timestamp}
    assert metrics["ml_platform_last_landed_timestamp_seconds"] == {(("source", "events"),): landed_at}
    [lag] = metrics["ml_platform_freshness_lag_seconds"].values()
    assert before - landed_at <= lag <= after - landed_at
    assert set(metrics["ml_platform_freshness_lag_seconds"]) == {(("source", "events"),)}
    assert 0 < metrics["ml_platform_scrape_duration_seconds"][()] < 5

    # A partition written again replaces its figures, never adds to them.
    runner.run("clean_events", partition=HALF_DAY)
    runner.run("clean_events", partition=LATE_DAY)
    metrics = _scrape(server, data_dir / "warehouse.duckdb")
    assert _by(metrics["ml_platform_rows_accepted"], "source")["events"] == 2956
    assert _by(metrics["ml_platform_rows_quarantined"], "source")["events"] == 44
    assert _by(metrics["ml_platform_runs"], "status")["SUCCESS"] == 6
    assert _by(metrics["ml_platform_last_run_failed"], "asset")["clean_events"] == 0
    # The late day's re-run judges it alone, with the same WARN; the half day is still an ERROR.
    failing = {
        (dict(labels)["check"], dict(labels)["severity"]): value
        for labels, value in metrics["ml_platform_failing_checks"].items()
        if dict(labels)["asset"] == "clean_events" and value
    }
    assert failing == {("volume", "ERROR"): 1, ("late_arrivals", "WARN"): 1, ("contract", "ERROR"): 1}
