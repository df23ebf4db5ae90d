"""Latest values for serving: the function and the asset give what training would have given at that
time, stale values (past the view's TTL) are not served, unknown entities come back empty."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from conftest import write_landing
from helpers import pseudonym, run_metadata
from ml_platform.privacy import pseudonymize
from ml_platform.training import get_online_features, get_training_set
from ml_platform.warehouse import connect

EVENTS = "event_id,user_id,event_type,event_time,product_id,amount,device_type,session_id\n"
FEATURES = ["user_activity:lifetime_value", "user_activity:purchases", "user_activity:plan"]


def _build(runner, data_dir, first: dt.date, last: dt.date) -> None:
    """u1 buys on the first day and two days later; u2 buys once, on the first day."""
    day = dt.timedelta(days=1)
    write_landing(
        data_dir, "users", first.isoformat(), "users.csv", "user_id,signup_date,country,plan\nu1,2026-01-01,DE,free\n"
    )
    for offset, rows in {
        0: [
            f"a1,u1,purchase,{first}T08:00:00Z,P1,20.0,mobile,s1",
            f"b1,u2,purchase,{first}T09:00:00Z,P1,5.0,mobile,s2",
        ],
        2: [f"a2,u1,purchase,{first + 2 * day}T08:00:00Z,P1,10.0,mobile,s3"],
    }.items():
        landing = (first + offset * day).isoformat()
        write_landing(data_dir, "events", landing, "events.csv", EVENTS + "\n".join(rows) + "\n")
    runner.run("raw_users", partition=first.isoformat())
    runner.run("clean_users")
    runner.run("raw_events", range_=(first.isoformat(), (first + 2 * day).isoformat()))
    runner.run("clean_events", range_=(first.isoformat(), (first + 2 * day).isoformat()))
    runner.run("user_activity", range_=(first.isoformat(), last.isoformat()))


def test_online_lookup_is_the_training_lookup_at_that_time(runner, data_dir):
    first = dt.date(2026, 11, 2)
    _build(runner, data_dir, first, dt.date(2026, 11, 8))
    entities = pd.DataFrame({"user_id": ["u2", "u1", "nobody"]})
    with connect(data_dir / "warehouse.duckdb", read_only=True) as con:
        at = dt.datetime(2026, 11, 6, 12, tzinfo=dt.UTC)
        served = get_online_features(con, entities, FEATURES, at=at)
        # Training reads curated ids, pseudonyms; serving takes the raw ones.
        training_entities = pseudonymize(con, entities, ["user_id"])
        trained = get_training_set(
            con, training_entities.assign(event_timestamp=pd.Timestamp("2026-11-06 12:00")), FEATURES
        ).df()
        # Two days after the last row (as of 11-08, the TTL), nothing is served.
        stale = get_online_features(con, entities, FEATURES, at=dt.datetime(2026, 11, 10, 0, 0, 1, tzinfo=dt.UTC))
    assert served.astype(object).where(served.notna(), None).to_dict("records") == [
        {"user_id": "u2", "lifetime_value": 5.0, "purchases": 1, "plan": None},  # u2 is not in the users snapshot
        {"user_id": "u1", "lifetime_value": 30.0, "purchases": 2, "plan": "free"},
        {"user_id": "nobody", "lifetime_value": None, "purchases": None, "plan": None},
    ]
    assert trained["user_id"].tolist() == [pseudonym("u2"), pseudonym("u1"), pseudonym("nobody")]
    assert served.drop(columns=["user_id"]).equals(trained.drop(columns=["event_timestamp", "user_id"]))
    assert stale[["lifetime_value", "purchases", "plan"]].isna().all().all()


def test_latest_features_holds_each_entitys_current_vector(runner, data_dir):
    today = dt.datetime.now(dt.UTC).date()
    # Activity built up to today: today's row (as of this midnight) is the current one.
    _build(runner, data_dir, today - dt.timedelta(days=4), today)
    run = runner.run("latest_features")
    assert run_metadata(run, "latest_features")["latest_user_activity_rows"] == 2
    # Serving tables are curated: pseudonymized user ids.
    assert runner.query(
        "SELECT user_id, lifetime_value, purchases, plan FROM latest_user_activity ORDER BY 1"
    ) == sorted([(pseudonym("u1"), 30.0, 2, "free"), (pseudonym("u2"), 5.0, 1, None)])
    # Views nobody has built yet are served as empty tables, not errors.
    assert runner.query("SELECT count(*) FROM latest_device_health") == [(0,)]
