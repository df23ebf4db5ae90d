"""The demo data of every file source, end to end in process, reconciled with the manifest."""

from __future__ import annotations

import datetime as dt

import pytest

from helpers import run_metadata
from ml_platform.demo import generate


@pytest.fixture
def demo(data_dir):
    return generate(
        data_dir, days=3, events_per_day=200, seed=4, end_date=dt.date(2026, 11, 20), telemetry_hours_per_day=4
    )


def _landing_range(demo):
    return demo["start_date"], demo["end_date"]


@pytest.mark.parametrize("source", ["users", "products"])
def test_snapshot_sources_keep_every_version(runner, demo, source):
    runner.run(f"raw_{source}", range_=_landing_range(demo))
    result = runner.run(f"clean_{source}")
    expected = demo[source]
    key = "user_id" if source == "users" else "product_id"
    assert runner.query(f"SELECT count(*), count(*) FILTER (WHERE is_current) FROM clean_{source}") == [
        (expected["expected_versions"], expected["current"])
    ]
    # One open version per current key, none overlapping.
    assert runner.query(
        f"SELECT count(*) FROM (SELECT {key} FROM clean_{source} WHERE valid_to IS NULL GROUP BY 1 HAVING count(*) > 1)"
    ) == [(0,)]
    assert runner.query(
        f"""SELECT count(*) FROM clean_{source} a JOIN clean_{source} b USING ({key})
            WHERE a.valid_from < b.valid_from AND (a.valid_to IS NULL OR a.valid_to > b.valid_from)"""
    ) == [(0,)]
    # The contract, and one current version per key (the uniqueness check) hold.
    assert {e.check_name: e.passed for e in result.get_asset_check_evaluations()} == {
        "contract": True,
        "uniqueness": True,
    }


def test_users_removed_from_the_export_are_closed(runner, demo):
    runner.run("raw_users", range_=_landing_range(demo))
    runner.run("clean_users")
    removed = runner.query(
        "SELECT count(DISTINCT user_id) FROM clean_users WHERE user_id NOT IN "
        "(SELECT user_id FROM clean_users WHERE is_current)"
    )
    assert removed == [(demo["users"]["removed"],)]


def test_telemetry_demo_reconciles(runner, demo):
    first, last = _landing_range(demo)
    runner.run("raw_telemetry", range_=(first, last))
    result = runner.run("clean_telemetry", range_=(first, last))
    t = demo["telemetry"]
    assert runner.query("SELECT count(*) FROM clean_telemetry") == [(t["valid_unique"],)]
    by_column = dict(runner.query("SELECT column_name, count(*) FROM quarantine_telemetry GROUP BY 1"))
    assert by_column == {
        "temperature": t["bad_rows"]["temperature_out_of_range"],
        "vibration": t["bad_rows"]["vibration_out_of_range"],
    }
    meta = run_metadata(result)
    assert (meta["raw_rows_scanned"], meta["duplicates_removed"]) == (t["rows"], t["duplicates"])


def test_maintenance_demo_reconciles(runner, demo):
    first, last = _landing_range(demo)
    runner.run("raw_maintenance", range_=(first, last))
    runner.run("clean_maintenance", range_=(first, last))
    m = demo["maintenance"]
    assert dict(runner.query("SELECT event_type, count(*) FROM clean_maintenance GROUP BY 1")) == {
        "failure": m["failures"],
        "maintenance": m["maintenance"],
    }
    assert runner.query("SELECT count(*) FROM quarantine_maintenance") == [(0,)]
