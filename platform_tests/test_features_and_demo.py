"""Curated features on exact fixtures, and the demo data set reconciled end to end in process."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from conftest import USERS_CSV, write_landing
from helpers import raw_ids, run_metadata
from ml_platform.demo import generate

FEATURE_EVENTS = """event_id,user_id,event_type,event_time,product_id,amount,device_type,session_id
a1,u1,page_view,2026-11-02T08:00:00Z,,,mobile,s1
a2,u1,product_view,2026-11-02T08:01:00Z,P1,,mobile,s1
a3,u1,add_to_cart,2026-11-02T08:02:00Z,P1,,desktop,s1
a4,u1,purchase,2026-11-02T08:03:00Z,P1,20.00,mobile,s1
a5,u1,purchase,2026-11-02T08:04:00Z,P2,10.00,desktop,s1
b1,u2,page_view,2026-11-02T09:00:00Z,,,tablet,s2
b2,u2,search,2026-11-02T09:01:00Z,,,desktop,s2
c1,u3,page_view,2026-11-02T10:00:00Z,,,,s3
"""


def test_user_daily_features_exact(runner, data_dir):
    write_landing(data_dir, "users", "2026-11-01", "users.csv", USERS_CSV)
    write_landing(data_dir, "events", "2026-11-02", "f.csv", FEATURE_EVENTS)
    runner.run("raw_users", partition="2026-11-01")
    runner.run("clean_users")
    runner.run("raw_events", partition="2026-11-02")
    result = runner.run("clean_events", "user_daily_features", partition="2026-11-02")
    # User ids are pseudonymized (shown as the ids they stand for).
    rows = raw_ids(runner.query("SELECT * FROM user_daily_features"), "u1", "u2", "u3")
    assert sorted(rows, key=lambda r: r[0]) == [
        # mobile 3 vs desktop 2; signup 2026-10-01 -> 32 days
        ("u1", dt.date(2026, 11, 2), 5, 2, 2, 30.0, 15.0, 20.0, 1, "mobile", 32),
        # tablet/desktop tie -> alphabetical
        ("u2", dt.date(2026, 11, 2), 2, 0, 0, 0.0, None, None, 0, "desktop", 18),
        # unknown user: no signup date, no device
        ("u3", dt.date(2026, 11, 2), 1, 0, 0, 0.0, None, None, 0, None, None),
    ]
    checks = {(c.asset_key.to_user_string(), c.partition): c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {("clean_events", "2026-11-02"): True, ("user_daily_features", "2026-11-02"): True}


def test_failing_clean_check_blocks_features_in_the_same_run(runner, data_dir):
    write_landing(data_dir, "users", "2026-11-01", "users.csv", USERS_CSV)
    bad = "event_id,user_id,event_type,event_time,product_id,amount\n" + "".join(
        f"x{i},u1,{'bogus' if i < 8 else 'page_view'},2026-11-04T10:00:00Z,,\n" for i in range(10)
    )
    write_landing(data_dir, "events", "2026-11-04", "bad.csv", bad)
    runner.run("raw_users", partition="2026-11-01")
    runner.run("clean_users")
    runner.run("raw_events", partition="2026-11-04")
    result = runner.run("clean_events", "user_daily_features", partition="2026-11-04", expect_success=False)
    assert [e.asset_key.to_user_string() for e in result.get_asset_materialization_events()] == ["clean_events"]
    assert runner.query("SELECT count(*) FROM clean_events") == [(2,)]
    assert runner.query("SELECT count(*) FROM quarantine_events WHERE rule = 'event_type:isin'") == [(8,)]
    tables = {r[0] for r in runner.query("SELECT table_name FROM information_schema.tables")}
    assert "user_daily_features" not in tables


# The generator's defect names -> the clean layer's quarantine rules.
RULE_OF_DEFECT = {
    "event_id_null": "event_id:not_nullable",
    "user_id_null": "user_id:not_nullable",
    "event_time_unparsable": "event_time:unparsable_timestamp",
    "amount_negative": "amount:greater_than_or_equal_to(0.0)",
    "amount_absurd": "amount:less_than_or_equal_to(10000.0)",
    "event_type_unknown": "event_type:isin",
}


@pytest.fixture
def demo(data_dir):
    return generate(data_dir, days=6, events_per_day=300, seed=11, end_date=dt.date(2026, 11, 20))


def test_demo_manifest_reconciles_with_clean_and_quarantine(runner, demo):
    first, last = demo["start_date"], demo["end_date"]
    runner.run("raw_users", range_=(first, last))
    runner.run("clean_users")
    raw = runner.run("raw_events", range_=(first, last))
    assert run_metadata(raw)["dagster/row_count"] == demo["totals"]["rows"]
    earliest = min(demo["expected_clean_by_event_date"])
    clean = runner.run("clean_events", "user_daily_features", range_=(earliest, last))
    totals = demo["totals"]

    by_date = dict(runner.query("SELECT strftime(event_date, '%Y-%m-%d'), count(*) FROM clean_events GROUP BY 1"))
    assert by_date == demo["expected_clean_by_event_date"]
    quarantined = dict(runner.query("SELECT rule, count(*) FROM quarantine_events GROUP BY 1"))
    expected_rules = {RULE_OF_DEFECT[k]: v for k, v in totals["bad_rows"].items() if v}
    expected_rules["event_time:later_than_tolerance(3d)"] = totals["late_beyond_tolerance"]
    assert quarantined == expected_rules

    meta = run_metadata(clean, "clean_events")
    assert meta["duplicates_removed"] == totals["duplicates"]
    assert meta["late_rows"] == totals["late_within_tolerance"]
    assert meta["raw_rows_scanned"] == totals["rows"]
    assert meta["dagster/row_count"] == totals["unique_valid_events"]
    assert json.loads(json.dumps(meta["quarantined_by_rule"])) == expected_rules
    # Every v1 row lacks a device; v2/v3 rows have one, under either name.
    assert runner.query(
        "SELECT count(*) FROM clean_events WHERE schema_version = 'v1' AND device_type IS NOT NULL"
    ) == [(0,)]
    assert runner.query("SELECT count(*) FROM clean_events WHERE schema_version = 'v3' AND device_type IS NULL") == [
        (0,)
    ]
    # Features cover every user active on each day.
    assert runner.query("SELECT count(*) FROM user_daily_features") == runner.query(
        "SELECT count(*) FROM (SELECT DISTINCT user_id, event_date FROM clean_events)"
    )


def test_demo_range_backfill_is_idempotent(runner, demo):
    first, last = demo["start_date"], demo["end_date"]
    earliest = min(demo["expected_clean_by_event_date"])
    runner.run("raw_users", range_=(first, last))
    runner.run("clean_users")

    def materialize_all():
        runner.run("raw_events", range_=(first, last))
        runner.run("clean_events", "user_daily_features", range_=(earliest, last))
        return [
            runner.query("SELECT * EXCLUDE (ingested_at) FROM clean_events ORDER BY ALL"),
            runner.query("SELECT * EXCLUDE (ingested_at, quarantined_at) FROM quarantine_events ORDER BY ALL"),
            runner.query("SELECT * FROM user_daily_features ORDER BY ALL"),
        ]

    once = materialize_all()
    twice = materialize_all()
    assert twice == once
    assert len(once[0]) == demo["totals"]["unique_valid_events"]


def test_features_of_a_day_larger_than_the_memory_limit_spill_and_equal_the_unlimited_ones(
    runner, data_dir, monkeypatch
):
    """Aggregates that DuckDB can spill: the same features, to the last bit, under a memory limit
    far below what the day's 50,000 user groups take. (With the spend summed in event_id order,
    `sum(amount ORDER BY event_id)`, the aggregate could not spill: this day failed with "Out of
    Memory Error" under 48 MB, and so did a 6 M-event day of the benchmark under the default 384 MB.)"""
    lines = [
        f"e{i},u{i % 50_000},{'purchase' if i % 3 == 0 else 'page_view'},2026-11-02T{i % 24:02d}:00:00Z,"
        f"p{i % 997},{(i % 10_000) / 100},mobile,s{i}\n"
        for i in range(150_000)
    ]
    write_landing(data_dir, "users", "2026-11-01", "users.csv", USERS_CSV)
    write_landing(
        data_dir, "events", "2026-11-02", "f.csv", FEATURE_EVENTS.splitlines(keepends=True)[0] + "".join(lines)
    )
    runner.run("raw_users", partition="2026-11-01")
    runner.run("clean_users")
    runner.run("raw_events", partition="2026-11-02")
    runner.run("clean_events", partition="2026-11-02")
    digest = "SELECT count(*), sum(hash(COLUMNS(*))) FROM user_daily_features"
    runner.run("user_daily_features", partition="2026-11-02")
    unlimited = runner.query(digest)
    assert unlimited[0][0] == 50_000

    monkeypatch.setenv("ML_PLATFORM_DUCKDB_MEMORY_LIMIT", "48MB")
    result = runner.run("user_daily_features", partition="2026-11-02")
    assert result.success
    assert runner.query(digest) == unlimited
