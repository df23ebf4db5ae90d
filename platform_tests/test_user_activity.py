"""The user_activity feature view on hand-computed fixtures: as of each day, nothing from that day
or later; plan and country as they were; a late event recomputes exactly the days it changes and
never leaks into training rows from before it landed."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd

from conftest import days, write_landing
from helpers import pseudonym, raw_ids
from ml_platform.privacy import pseudonymize
from ml_platform.training import get_training_set
from ml_platform.warehouse import connect

USERS = "user_id,signup_date,country,plan\n"
EVENTS = "event_id,user_id,event_type,event_time,product_id,amount,device_type,session_id\n"
ACTIVITY = dg.AssetKey("user_activity")
COLUMNS = (
    "user_id, strftime(as_of_date, '%m-%d'), strftime(created_at, '%m-%d'), lifetime_value, purchases, "
    "avg_order_value, days_since_last_purchase, spend_7d, spend_30d, events_7d, events_30d, sessions_30d, plan, country"
)


def _land(data_dir) -> None:
    write_landing(data_dir, "users", "2026-11-01", "users.csv", USERS + "u1,2026-10-01,DE,free\nu2,2026-10-15,US,pro\n")
    # u1 upgrades; the snapshot lands during 11-05, so it is known from 11-06 on.
    write_landing(data_dir, "users", "2026-11-05", "users.csv", USERS + "u1,2026-10-01,DE,plus\nu2,2026-10-15,US,pro\n")
    for day, rows in {
        "2026-11-02": [
            "a1,u1,purchase,2026-11-02T08:00:00Z,P1,20.0,mobile,s1",
            "a2,u1,page_view,2026-11-02T08:05:00Z,,,mobile,s1",
        ],
        "2026-11-03": ["b1,u2,page_view,2026-11-03T09:00:00Z,,,desktop,s4"],
        "2026-11-04": ["a3,u1,purchase,2026-11-04T10:00:00Z,P2,10.0,mobile,s2"],
        "2026-11-06": ["a4,u1,page_view,2026-11-06T11:00:00Z,,,tablet,s3"],
    }.items():
        write_landing(data_dir, "events", day, "events.csv", EVENTS + "\n".join(rows) + "\n")


def _build(runner, first: str = "2026-11-03", last: str = "2026-11-11") -> None:
    runner.run("raw_users", range_=("2026-11-01", "2026-11-05"))
    runner.run("clean_users")
    runner.run("raw_events", range_=("2026-11-02", "2026-11-06"))
    runner.run("clean_events", range_=("2026-11-01", "2026-11-07"))
    runner.run("user_activity", range_=(first, last))


def test_values_as_of_each_day(runner, data_dir):
    _land(data_dir)
    _build(runner)
    # The table holds pseudonymized user ids, shown as the ids they stand for, by as-of day then user.
    rows = raw_ids(runner.query(f"SELECT {COLUMNS} FROM user_activity"), "u1", "u2")
    assert sorted(rows, key=lambda r: (r[1], r[0])) == [
        # user, as of, created, ltv, purchases, aov, days since purchase, spend 7d/30d, events 7d/30d, sessions, plan, country
        ("u1", "11-03", "11-03", 20.0, 1, 20.0, 1, 20.0, 20.0, 2, 2, 1, "free", "DE"),
        ("u1", "11-04", "11-03", 20.0, 1, 20.0, 2, 20.0, 20.0, 2, 2, 1, "free", "DE"),
        # u2 is known from its first event on 11-03; it has never purchased. Its plan never changed,
        # so its rows stay known from when that event landed.
        ("u2", "11-04", "11-04", 0.0, 0, None, None, 0.0, 0.0, 1, 1, 1, "pro", "US"),
        ("u1", "11-05", "11-05", 30.0, 2, 15.0, 1, 30.0, 30.0, 3, 3, 2, "free", "DE"),
        ("u2", "11-05", "11-04", 0.0, 0, None, None, 0.0, 0.0, 1, 1, 1, "pro", "US"),
        # The upgrade: the old plan until the 11-05 snapshot has landed, the new one after.
        ("u1", "11-06", "11-06", 30.0, 2, 15.0, 2, 30.0, 30.0, 3, 3, 2, "plus", "DE"),
        ("u2", "11-06", "11-04", 0.0, 0, None, None, 0.0, 0.0, 1, 1, 1, "pro", "US"),
        ("u1", "11-07", "11-07", 30.0, 2, 15.0, 3, 30.0, 30.0, 4, 4, 3, "plus", "DE"),
        ("u2", "11-07", "11-04", 0.0, 0, None, None, 0.0, 0.0, 1, 1, 1, "pro", "US"),
        ("u1", "11-08", "11-07", 30.0, 2, 15.0, 4, 30.0, 30.0, 4, 4, 3, "plus", "DE"),
        ("u2", "11-08", "11-04", 0.0, 0, None, None, 0.0, 0.0, 1, 1, 1, "pro", "US"),
        ("u1", "11-09", "11-07", 30.0, 2, 15.0, 5, 30.0, 30.0, 4, 4, 3, "plus", "DE"),
        ("u2", "11-09", "11-04", 0.0, 0, None, None, 0.0, 0.0, 1, 1, 1, "pro", "US"),
        # The 7-day window is the 7 days before: on 11-10 it starts on 11-03, without 11-02's purchase.
        ("u1", "11-10", "11-07", 30.0, 2, 15.0, 6, 10.0, 30.0, 2, 4, 3, "plus", "DE"),
        ("u2", "11-10", "11-04", 0.0, 0, None, None, 0.0, 0.0, 1, 1, 1, "pro", "US"),
        ("u1", "11-11", "11-07", 30.0, 2, 15.0, 7, 10.0, 30.0, 2, 4, 3, "plus", "DE"),
        ("u2", "11-11", "11-04", 0.0, 0, None, None, 0.0, 0.0, 0, 1, 1, "pro", "US"),
    ]


def _without_labels(requested: dict) -> dict:
    return {key: partitions for key, partitions in requested.items() if key != dg.AssetKey("churn_label")}


def test_late_event_recomputes_the_days_it_changes_and_never_leaks(runner, data_dir, instance, defs):
    from helpers import Ticker

    _land(data_dir)
    _build(runner)
    # Automation as it runs on 2026-11-12: a windowed view is kept current for its latest days.
    ticker = Ticker(defs, instance, now=dt.datetime(2026, 11, 12, 6, tzinfo=dt.UTC))
    ticker.tick()
    ticker.cancel_submitted()  # whatever the first tick found to do, not this test's business
    # A purchase of u2 on 11-06 lands two days late, on 11-08 (within the 3-day tolerance).
    write_landing(
        data_dir, "events", "2026-11-08", "late.csv", EVENTS + "c1,u2,purchase,2026-11-06T12:00:00Z,P3,5.0,mobile,s5\n"
    )
    runner.run("raw_events", partition="2026-11-08")
    # The landing's clean days are requested, with their same-day features (one run each).
    clean_days = set(days("2026-11-05", "2026-11-09"))
    assert _without_labels(ticker.tick()) == {
        dg.AssetKey("clean_events"): clean_days,
        dg.AssetKey("user_daily_features"): clean_days,
    }
    for day in sorted(clean_days):
        runner.run("clean_events", "user_daily_features", partition=day)
    # Each clean day D feeds the activity of D+1 … D+30: on the tick after those clean days were
    # written (requested beside them, it would run before them and again after), exactly the
    # partitions that exist then (up to today, 11-12) are requested.
    # (Churn labels, which the landing days make final, are test_labels.py's business.)
    assert _without_labels(ticker.tick()) == {ACTIVITY: set(days("2026-11-06", "2026-11-12"))}
    assert _without_labels(ticker.tick()) == {}
    runner.run("user_activity", range_=("2026-11-06", "2026-11-11"))

    late = runner.query(
        "SELECT strftime(as_of_date, '%m-%d'), strftime(created_at, '%m-%d'), lifetime_value, purchases "
        "FROM user_activity WHERE user_id = ? ORDER BY as_of_date",
        [pseudonym("u2")],
    )
    assert late == [
        ("11-04", "11-04", 0.0, 0),
        ("11-05", "11-04", 0.0, 0),
        # As of 11-06 the purchase of that day does not count yet; from 11-07 it does, known from 11-09.
        ("11-06", "11-04", 0.0, 0),
        ("11-07", "11-09", 5.0, 1),
        ("11-08", "11-09", 5.0, 1),
        ("11-09", "11-09", 5.0, 1),
        ("11-10", "11-09", 5.0, 1),
        ("11-11", "11-09", 5.0, 1),
    ]

    # Training rows before the late file landed see what was known then: no purchase.
    entities = pd.DataFrame(
        {
            "user_id": ["u2", "u2", "u2"],
            "event_timestamp": pd.to_datetime(["2026-11-07 12:00", "2026-11-08 23:59", "2026-11-09 00:00"]),
            "churned": [0, 0, 1],
        }
    )
    con = connect(data_dir / "warehouse.duckdb", read_only=True)
    try:
        entities = pseudonymize(con, entities, ["user_id"])  # curated tables hold pseudonyms
        training = get_training_set(con, entities, ["user_activity:purchases", "user_activity:plan"]).fetchall()
    finally:
        con.close()
    assert raw_ids(training, "u2") == [
        # 11-07's row is not known until 11-09: the newest row known is 11-06's (within the 2-day TTL).
        ("u2", dt.datetime(2026, 11, 7, 12), 0, 0, "pro"),
        # 11-08 23:59: the newest known row (11-06) is older than the TTL: no values rather than stale ones.
        ("u2", dt.datetime(2026, 11, 8, 23, 59), 0, None, None),
        # From 11-09 the recomputed rows are known.
        ("u2", dt.datetime(2026, 11, 9), 1, 1, "pro"),
    ]


def test_automation_keeps_only_recent_days_of_a_windowed_view_current(runner, data_dir, instance, defs):
    """Data for days long past does not launch a run per partition of the 30-day window: only the
    latest 8 days are kept current by automation (older history is backfilled)."""
    from helpers import Ticker

    _land(data_dir)
    _build(runner)
    ticker = Ticker(defs, instance, now=dt.datetime(2027, 3, 1, tzinfo=dt.UTC))
    ticker.tick()
    write_landing(
        data_dir, "events", "2026-11-08", "late.csv", EVENTS + "c1,u2,purchase,2026-11-06T12:00:00Z,P3,5.0,mobile,s5\n"
    )
    runner.run("raw_events", partition="2026-11-08")
    requested = ticker.tick()
    assert requested[dg.AssetKey("clean_events")] == set(days("2026-11-05", "2026-11-09"))
    assert ACTIVITY not in requested  # 2026-11-06 … 12-09 are long before the latest 8 days
