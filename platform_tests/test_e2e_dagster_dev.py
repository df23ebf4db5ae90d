"""End to end through `make dev`: with no click, every asset of every source fills on a demo week,
and Ctrl-C stops everything make dev started.

No in-process shortcuts: the landing sensors request the raw partitions, the automation sensor the
clean and curated ones, and everything is observed over the webserver's GraphQL API, the way the
UI sees it. (A file landed into a running platform, watched in the UI, is test_ui_flows.py's.)
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
import time
from pathlib import Path

import pytest

from make_dev import (
    NEVER_IN_A_WEEK,
    ON_THEIR_SCHEDULE,
    STOP_TIMEOUT,
    STREAM_ASSETS,
    STREAM_VIEWS,
    UNPARTITIONED,
    expected_partitions,
    interrupt,
    is_stream_run,
    running_make_dev,
    wait_until_settled,
)
from ml_platform.demo.manifest import read_manifest
from ml_platform.demo.transactions import demo_transactions
from ml_platform.demo.transactions import expected as expected_payments
from ml_platform.demo.weather_api import LOCATIONS as WEATHER_LOCATIONS
from ml_platform.warehouse import connect
from platform_server import FINISHED, process_group_alive
from postgres_server import cluster_on_port

pytestmark = pytest.mark.e2e

PIPELINE_TIMEOUT = 180.0
EVENTS = 20
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def _event_dates(path: Path) -> set[str]:
    with path.open(newline="") as f:
        times = [dt.datetime.fromisoformat(row["event_time"]) for row in csv.DictReader(f)]
    return {t.astimezone(dt.UTC).date().isoformat() for t in times}


# --- make dev: every source, no clicks ------------------------------------------------------------

SETTLE_TIMEOUT = 480.0  # about 100 runs; 2-3 minutes on a quiet 2-core machine
CLEAN_WAIT = 120.0  # the stream's clean run once raw has today's partition, queued behind the catch-up


def _csv_rows(data_dir: Path, source: str) -> int:
    """Data lines of every landed file of a snapshot source, counted without a CSV parser."""
    return sum(len(p.read_text().splitlines()) - 1 for p in (data_dir / "landing" / source).rglob("*.csv"))


def _int_metadata(materialization: dict) -> dict[str, int]:
    return {e["label"]: e["intValue"] for e in materialization["metadataEntries"] if e.get("intValue") is not None}


def test_make_dev_fills_every_source_and_ctrl_c_stops_everything(
    tmp_path: Path, make_dev_demo: Path, uninterrupted_catch_ups: list[Path]
):
    """`make dev` on a demo week: with no click, every raw, clean, feature view, label, training set,
    model and serving table fills from all seven sources (the transactions from make dev's own
    PostgreSQL server, the weather fetched by the catch-up sensor), with partitions from the demo's
    first day, and the demo clickstream flows from make dev's Kafka broker into raw and clean; then
    Ctrl-C stops every process it started, the database server and the broker included. Its
    warehouse is then the chaos test's uninterrupted catch-up (test_make_dev_chaos.py)."""
    shutil.copytree(make_dev_demo, tmp_path / "data")
    started = time.time()
    with running_make_dev(tmp_path) as platform:
        try:
            manifest = read_manifest(platform.data_dir)
            first, last = manifest["start_date"], manifest["end_date"]
            expected = expected_partitions(manifest, dt.datetime.now(dt.UTC))
            settled_at = wait_until_settled(platform, expected, SETTLE_TIMEOUT)
            print(f"demo landed and make dev settled in {settled_at - started:.0f} s")

            # Every asset is accounted for below: a new one needs its expectation here.
            assert platform.asset_names() == {
                *expected,
                *UNPARTITIONED,
                *NEVER_IN_A_WEEK,
                *ON_THEIR_SCHEDULE,
                *STREAM_ASSETS,
            }
            # Partitions start at the demo's first day: exactly the expected ones, nothing older.
            for asset, keys in expected.items():
                assert platform.materialized_partitions(asset) == keys, asset
            every_run = platform.runs(limit=1000)
            batch_runs = [r for r in every_run if not is_stream_run(r.assets)]
            assert {r.status for r in batch_runs} == {"SUCCESS"}, platform.describe_runs()
            # The stream flows by itself too: the demo producer's events reach raw by the lag sensor's
            # runs and clean by the automation, today's partition; its runs go on, none failed.
            today = dt.datetime.now(dt.UTC).date().isoformat()
            stream_runs = [r for r in every_run if is_stream_run(r.assets)]
            assert {r.sensor for r in stream_runs if "raw_stream_events" in r.assets} == {"stream_events_lag_sensor"}
            assert [r for r in stream_runs if r.status in FINISHED - {"SUCCESS"}] == [], platform.describe_runs()
            # Materializations, not partition statuses: a stream run is often in progress, and the
            # UI's status of today's partition is then "materializing".
            assert platform.materializations("raw_stream_events", today) != []
            for view in STREAM_VIEWS:  # brought up to date in the lag sensor's runs, with raw
                assert platform.materializations(view, today) != [], view
            # The stream's clean day: built as soon as the stream has written it, then rebuilt on its
            # schedule (every 5 minutes, not per micro-batch: test_kafka_source.py).
            platform.wait_for(
                lambda: platform.materializations("clean_stream_events", today),
                CLEAN_WAIT,
                what="the stream's clean table",
            )
            # The churn label is final 33 days after its day: a demo week has none, so its training
            # set and models have nothing to build from yet.
            for asset in NEVER_IN_A_WEEK:
                assert platform.materializations(asset) == [], asset
            # Transactions: one run per creation day, requested by the change sensor; weather: the
            # complete days in a single-run range, requested by the catch-up sensor.
            runs = platform.runs(limit=1000)
            assert sorted(r.partition for r in runs if r.sensor == "transactions_change_sensor") == sorted(
                expected["raw_transactions"]
            )
            catch_up = [r for r in runs if r.sensor == "weather_catch_up_sensor"]
            fetched = sorted(expected["raw_weather"])
            assert [(r.tags.get(RANGE_START), r.tags.get(RANGE_END)) for r in catch_up] == [(fetched[0], fetched[-1])]
            model = _int_metadata(platform.materializations("device_failure_model")[0])
            training_set = _int_metadata(platform.materializations("device_failure_training_set")[0])
            assert model["train_rows"] > 0 and model["validation_rows"] > 0
            assert model["train_rows"] + model["validation_rows"] == training_set["dagster/row_count"]

            # Ctrl-C stops everything make dev started: dagster dev and its runs, the weather API,
            # the metrics server and the payments database (a server and its cluster folder).
            env_file = platform.dagster_home / "payments_db.env"
            port = next(
                line.split("=", 1)[1] for line in env_file.read_text().splitlines() if "ML_PLATFORM_PG_PORT=" in line
            )
            cluster = cluster_on_port(port)
            assert cluster is not None and cluster.is_dir()
            pgid = platform.pgid
            stopped_in = interrupt(platform)
            print(f"make dev stopped {stopped_in:.1f} s after Ctrl-C")
        except BaseException:
            platform.save_log()
            raise
    # make exits as soon as its shell's trap has signalled what it started; the broker (up to 20 s
    # for a clean shutdown), Redis and the database stop on their own time, within the bound.
    deadline = time.monotonic() + STOP_TIMEOUT
    while process_group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not process_group_alive(pgid), f"make dev left processes behind {STOP_TIMEOUT:.0f} s after Ctrl-C"
    assert cluster_on_port(port) is None and not cluster.exists() and not env_file.exists()

    # Every table holds the demo's rows: exact where the generator states them.
    payments = expected_payments(
        demo_transactions(manifest["seed"], dt.date.fromisoformat(first), dt.date.fromisoformat(last))
    )
    hours = len(expected["raw_weather"]) * len(WEATHER_LOCATIONS) * 24
    exact = {
        "raw_events": manifest["totals"]["rows"],
        "clean_events": sum(n for day, n in manifest["expected_clean_by_event_date"].items() if day >= first),
        "raw_users": _csv_rows(platform.data_dir, "users"),
        "clean_users": manifest["users"]["expected_versions"],
        "raw_products": _csv_rows(platform.data_dir, "products"),
        "clean_products": manifest["products"]["expected_versions"],
        "raw_telemetry": manifest["telemetry"]["rows"],
        "clean_telemetry": manifest["telemetry"]["valid_unique"],
        "raw_maintenance": manifest["maintenance"]["rows"],
        "clean_maintenance": manifest["maintenance"]["rows"],
        "raw_transactions": payments["rows"],
        "clean_transactions": payments["clean"],
        "quarantine_transactions": 0,
        "raw_weather": hours,
        "clean_weather": hours,
        "quarantine_weather": 0,
        "weather": hours,
        "latest_weather": len(WEATHER_LOCATIONS),
        "training_set_device_failure": training_set["dagster/row_count"],
    }
    some = (
        "user_daily_features",
        "user_activity",
        "user_transactions",
        "device_health",
        "product_features",
        "device_failure_label",
        "latest_user_activity",
        "latest_user_transactions",
        "latest_device_health",
        "latest_product_features",
    )
    with connect(platform.warehouse_path, read_only=True) as con:
        counts = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in [*exact, *some]}
        by_day = dict(
            con.execute(
                "SELECT strftime(transaction_date, '%Y-%m-%d'), count(*) FROM clean_transactions GROUP BY 1"
            ).fetchall()
        )
        label_rows = con.execute("SELECT count(*) FROM device_failure_label").fetchone()[0]
    assert {t: counts[t] for t in exact} == exact
    assert by_day == payments["clean_by_day"]
    assert [t for t in some if counts[t] == 0] == []
    assert training_set["dagster/row_count"] == label_rows
    assert (platform.data_dir / "models" / "device_failure.pkl").is_file()
    uninterrupted_catch_ups.append(platform.warehouse_path)
