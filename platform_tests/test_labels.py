"""Labels on hand-computed fixtures: the outcome window's edges, and nothing written before the
horizon has passed and the outcome's data has settled; automation writes a label partition
exactly when it matures."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg

from conftest import write_landing
from helpers import pseudonym, run_metadata
from ml_platform.declarations import discover_labels, discover_specs

EVENTS = "event_id,user_id,event_type,event_time,product_id,amount,device_type,session_id\n"
MAINTENANCE = "record_id,device_id,event_time,event_type,component,downtime_minutes\n"
CHURN = dg.AssetKey("churn_label")


def _purchase(event_id: str, user: str, day: str) -> str:
    return f"{event_id},{user},purchase,{day}T12:00:00Z,P1,10.0,mobile,s-{event_id}"


def _land_events(data_dir) -> None:
    for day, rows in {
        "2026-09-02": [_purchase("a1", "u1", "2026-09-02")],
        "2026-09-03": [_purchase("b1", "u2", "2026-09-03")],
        "2026-09-20": [_purchase("b2", "u2", "2026-09-20")],
        "2026-10-04": [_purchase("a2", "u1", "2026-10-04")],
        # The platform's clock: a file landed on 10-10 makes as-of days up to 10-10 - 33 final.
        "2026-10-10": ["c1,u3,page_view,2026-10-10T08:00:00Z,,,mobile,s9"],
    }.items():
        write_landing(data_dir, "events", day, "events.csv", EVENTS + "\n".join(rows) + "\n")


def test_churn_is_written_only_for_settled_days_with_exact_horizon_edges(runner, data_dir):
    _land_events(data_dir)
    runner.run("raw_events", range_=("2026-09-02", "2026-10-10"))
    runner.run("clean_events", range_=("2026-09-01", "2026-10-11"))
    # Every day automation keeps current (the latest 33 + 8 days) built, as a backfill would.
    runner.run("churn_label", range_=("2026-08-31", "2026-09-09"))
    u1, u2 = pseudonym("u1"), pseudonym("u2")  # label rows carry pseudonymized user ids
    assert runner.query(
        "SELECT strftime(as_of_date, '%m-%d'), user_id, churned, days_to_next_purchase, "
        "event_timestamp = CAST(as_of_date AS TIMESTAMP) FROM churn_label ORDER BY ALL"
    ) == sorted(
        [
            # u1 bought on 09-02, then on 10-04: as of 09-04 the 30 days end on 10-03 (churned); as of
            # 09-05 they hold 10-04, the last day of the horizon.
            ("09-03", u1, True, None, True),
            ("09-04", u1, True, None, True),
            # u2 is a customer from the day after its first purchase (09-03).
            ("09-04", u2, False, 16, True),
            ("09-05", u1, False, 29, True),
            ("09-05", u2, False, 15, True),
            ("09-06", u1, False, 28, True),
            ("09-06", u2, False, 14, True),
            ("09-07", u1, False, 27, True),
            ("09-07", u2, False, 13, True),
            # 09-08 and later: their horizon (plus 3 days of late events) has not passed on 10-10.
        ]
    )


def test_a_churn_partition_is_written_when_it_matures(runner, data_dir, instance, defs):
    from helpers import Ticker

    _land_events(data_dir)
    runner.run("raw_events", range_=("2026-09-02", "2026-10-10"))
    runner.run("clean_events", range_=("2026-09-01", "2026-10-11"))
    # Every day automation keeps current (the latest 33 + 8 days) built, as a backfill would.
    runner.run("churn_label", range_=("2026-08-31", "2026-09-09"))
    ticker = Ticker(defs, instance, now=dt.datetime(2026, 10, 11, 6, tzinfo=dt.UTC))
    ticker.tick()
    ticker.cancel_submitted()  # whatever the first tick found to do, not this test's business
    write_landing(data_dir, "events", "2026-10-11", "events.csv", EVENTS + _purchase("d1", "u4", "2026-10-11") + "\n")
    runner.run("raw_events", partition="2026-10-11")
    # The landing may hold late events of the 3 days before: those clean days are requested. So is
    # the label of 09-08, which the landing day 10-11 (09-08 + 33) makes final: its 30 days end at
    # 10-07, before every day the landing can change. The final days before it read none of the
    # rewritten days either, and the days after it are not final yet: written empty, they wait for
    # their clock.
    clean_days = {"2026-10-08", "2026-10-09", "2026-10-10", "2026-10-11"}
    assert ticker.tick() == {dg.AssetKey("clean_events"): clean_days, CHURN: {"2026-09-08"}}
    for day in sorted(clean_days):
        runner.run("clean_events", partition=day)
    runner.run("churn_label", partition="2026-09-08")
    # New label rows rebuild the training set; its models retrain once it is written (they read
    # what it holds then: ml_platform.automation).
    requested = {key.to_user_string(): partitions for key, partitions in ticker.tick().items()}
    assert {name: requested.get(name) for name in ("churn_training_set", "churn_model", "churn_leaky_model")} == {
        "churn_training_set": {None},
        "churn_model": None,
        "churn_leaky_model": None,
    }
    assert runner.query(
        "SELECT user_id, churned FROM churn_label WHERE as_of_date = '2026-09-08' ORDER BY 1"
    ) == sorted([(pseudonym("u1"), False), (pseudonym("u2"), False)])


def test_a_label_run_before_its_upstream_table_exists_writes_nothing(runner, data_dir):
    """Automation can start a label's run before the first clean run of the same tick has written
    its table: the label partition is written empty (not final) instead of failing."""
    run = runner.run("churn_label", partition="2026-09-08")
    assert runner.query("SELECT count(*) FROM churn_label") == [(0,)]
    assert run_metadata(run, "churn_label")["dagster/partition_row_count"] == 0


def _reading(device: str, time: str, location: str = "berlin") -> dict:
    return {
        "device_id": device,
        "timestamp": time,
        "temperature": 60.0,
        "vibration": 4.0,
        "pressure": 3.0,
        "rpm": 1500,
        "power_consumption": 14.0,
        "operating_hours": 1000.0,
        "maintenance_flag": False,
        "location": location,
    }


def _land_telemetry(data_dir, day: str, readings: list[dict]) -> None:
    write_landing(data_dir, "telemetry", day, "telemetry.jsonl", "".join(json.dumps(r) + "\n" for r in readings))


def test_device_failure_within_24_hours_of_each_reporting_hour(runner, data_dir):
    _land_telemetry(
        data_dir,
        "2026-09-01",
        [
            _reading("D001", "2026-09-01T10:15:00Z"),
            _reading("D001", "2026-09-01T10:45:00Z", location="london"),  # moved: the hour's last location
            _reading("D001", "2026-09-01T12:30:00Z"),
            _reading("D002", "2026-09-01T10:20:00Z"),
        ],
    )
    write_landing(
        data_dir,
        "maintenance",
        "2026-09-02",
        "maintenance_log.csv",
        MAINTENANCE
        + "M1,D001,2026-09-02T09:00:00Z,failure,bearing,120\n"
        # Exactly 24 h after D002's hour ended: outside its window [11:00, +24 h).
        + "M2,D002,2026-09-02T11:00:00Z,failure,motor,60\n"
        + "M3,D002,2026-09-01T11:30:00Z,maintenance,pump,30\n",
    )
    runner.run("raw_telemetry", partition="2026-09-01")
    runner.run("clean_telemetry", partition="2026-09-01")
    runner.run("raw_maintenance", partition="2026-09-02")
    runner.run("clean_maintenance", range_=("2026-09-01", "2026-09-02"))
    columns = "device_id, location, strftime(event_timestamp, '%m-%d %H:%M'), fails_within_24h, hours_to_failure"

    # The log of 09-01 and 09-02 may still be corrected until 09-04: nothing is final yet.
    runner.run("device_failure_label", partition="2026-09-01")
    assert runner.query(f"SELECT {columns} FROM device_failure_label") == []

    _land_telemetry(data_dir, "2026-09-05", [_reading("D001", "2026-09-05T00:10:00Z")])
    runner.run("raw_telemetry", partition="2026-09-05")
    runner.run("clean_telemetry", partition="2026-09-05")
    runner.run("device_failure_label", partition="2026-09-01")
    assert runner.query(f"SELECT {columns} FROM device_failure_label ORDER BY 1, 3") == [
        ("D001", "london", "09-01 11:00", True, 22.0),
        ("D001", "berlin", "09-01 13:00", True, 20.0),
        ("D002", "berlin", "09-01 11:00", False, None),
    ]


def test_each_label_settles_at_least_as_long_as_its_sources_arrive_late():
    """A label final before its outcome data stops arriving would be wrong for late outcomes."""
    tolerance = {f"clean_{spec.name}": spec.late_tolerance_days for spec in discover_specs()}
    outcome_source = {"churn_label": "clean_events", "device_failure_label": "clean_maintenance"}
    labels = {label.name: label for label in discover_labels()}
    assert set(labels) == set(outcome_source)
    for name, label in labels.items():
        assert label.settle_days >= tolerance[outcome_source[name]], name
