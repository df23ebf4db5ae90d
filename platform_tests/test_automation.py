"""Declarative automation: what `on_upstream_update` requests after raw, clean and feature runs.

These tests follow the chain raw_events -> clean_events -> user_daily_features (and the users
snapshot); the feature views downstream of the same clean tables have their own tests
(test_user_activity.py), so their conditions are left out here.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from conftest import USERS_CSV, days, write_landing
from helpers import Ticker, contract_evaluations

CLEAN, FEATURES, CLEAN_USERS = (
    dg.AssetKey("clean_events"),
    dg.AssetKey("user_daily_features"),
    dg.AssetKey("clean_users"),
)
CONTRACT = dg.AssetCheckKey(CLEAN, "contract")
HEADER = "event_id,user_id,event_type,event_time,product_id,amount\n"
TOLERANCE = 3  # events.late_tolerance_days


def _events(landing_date: str, prefix: str, *, n: int = 2, bogus: int = 0, event_date: str | None = None) -> str:
    day = event_date or landing_date
    rows = [
        f"{prefix}{i},u{1 + i % 2},{'bogus' if i < bogus else 'page_view'},{day}T{10 + i % 10:02d}:00:00Z,p{i},"
        for i in range(n)
    ]
    return HEADER + "\n".join(rows) + "\n"


def _shift(day: str, n: int) -> str:
    return (dt.date.fromisoformat(day) + dt.timedelta(days=n)).isoformat()


def _affected_event_days(landing_date: str, defs: dg.Definitions) -> set[str]:
    """Event days a landing day can hold (X - tolerance .. X + 1), clipped to existing partitions."""
    existing = set(defs.get_assets_def("clean_events").partitions_def.get_partition_keys())
    return set(days(_shift(landing_date, -TOLERANCE), _shift(landing_date, 1))) & existing


@pytest.fixture
def ticker(defs, instance) -> Ticker:
    """Raw → clean → the same-day features: what these tests are about. Feature views, labels,
    training sets and models have their own automation tests (test_user_activity, test_labels, …)."""
    graph = defs.resolve_asset_graph()
    kept = {"raw", "clean"}
    leave_out = [
        key.to_user_string()
        for key in graph.get_all_asset_keys()
        if graph.get(key).group_name not in kept and key.to_user_string() != "user_daily_features"
    ]
    return Ticker(defs, instance, leave_out=tuple(leave_out))


USERS_DAY = "2026-11-01"


def _land_users_and_clean(runner, data_dir, day: str = USERS_DAY):
    """A users snapshot lands in landing/users/<day>/, then raw_users <day> and clean_users run."""
    write_landing(data_dir, "users", day, "users.csv", USERS_CSV)
    runner.run("raw_users", partition=day)
    runner.run("clean_users")


def test_first_evaluation_requests_nothing(ticker):
    assert ticker.tick() == {}
    assert ticker.tick() == {}


def test_raw_partition_requests_exactly_the_event_days_it_can_hold(data_dir, runner, ticker, defs):
    ticker.tick()
    write_landing(data_dir, "events", "2026-11-10", "a.csv", _events("2026-11-10", "a"))
    runner.run("raw_events", partition="2026-11-10")

    expected = _affected_event_days("2026-11-10", defs)
    assert expected == set(days("2026-11-07", "2026-11-11"))  # today (2026-11-25 or later) is a partition
    assert ticker.tick() == {CLEAN: expected}
    # Handled: the next tick does not request them again.
    assert ticker.tick() == {}


def test_late_file_requests_only_the_days_it_can_change(data_dir, runner, ticker, defs):
    ticker.tick()
    _land_users_and_clean(runner, data_dir)
    write_landing(data_dir, "events", "2026-11-10", "a.csv", _events("2026-11-10", "a"))
    runner.run("raw_events", partition="2026-11-10")
    first = set(days("2026-11-07", "2026-11-11"))
    # clean_users ran after raw_users, so it is handled and not requested. With users clean, each
    # feature day is requested in the same tick as its clean day (Dagster's in-tick chaining:
    # `will_be_requested` counts as updated and as checks passed); the sensor puts both in one run
    # per partition, where a failing clean check stops the feature step (see below).
    assert ticker.tick() == {CLEAN: first, FEATURES: first}
    for day in sorted(first):
        runner.run("clean_events", "user_daily_features", partition=day)
    # Runs that updated both are handled: nothing is requested again.
    assert ticker.tick() == {}

    # A late file lands on 2026-11-12 with events of 2026-11-09.
    write_landing(data_dir, "events", "2026-11-12", "late.csv", _events("2026-11-12", "late", event_date="2026-11-09"))
    runner.run("raw_events", partition="2026-11-12")
    expected = _affected_event_days("2026-11-12", defs)
    assert expected == set(days("2026-11-09", "2026-11-13"))
    assert ticker.tick() == {CLEAN: expected, FEATURES: expected}
    assert ticker.tick() == {}


def test_features_follow_a_clean_partition_once_users_are_clean(data_dir, runner, ticker):
    ticker.tick()
    _land_users_and_clean(runner, data_dir)
    write_landing(data_dir, "events", "2026-11-10", "a.csv", _events("2026-11-10", "a"))
    runner.run("raw_events", partition="2026-11-10")
    runner.run("clean_events", partition="2026-11-10")  # by hand, in the same tick window as raw
    # clean 2026-11-10 already reflects raw (updated after it): the other four days are requested,
    # and features 2026-11-10 because its clean partition updated with a passing check.
    assert ticker.tick() == {
        CLEAN: {"2026-11-07", "2026-11-08", "2026-11-09", "2026-11-11"},
        FEATURES: set(days("2026-11-07", "2026-11-11")),
    }
    assert ticker.tick() == {}  # requested once: their runs are in progress

    # An operator cancels those runs. A clean-only re-run of one day then requests exactly that
    # feature day: its clean partition is newer than its last attempt.
    ticker.cancel_submitted()
    runner.run("clean_events", partition="2026-11-10")
    assert ticker.tick() == {FEATURES: {"2026-11-10"}}
    assert ticker.tick() == {}


def test_features_wait_for_clean_users(data_dir, runner, ticker):
    """clean_users gates (must exist with passing checks) but does not trigger features by itself."""
    ticker.tick()
    write_landing(data_dir, "events", "2026-11-10", "a.csv", _events("2026-11-10", "a"))
    runner.run("raw_events", partition="2026-11-10")
    assert ticker.tick() == {CLEAN: set(days("2026-11-07", "2026-11-11"))}  # no features: users missing
    runner.run("clean_events", partition="2026-11-10")
    assert ticker.tick() == {}  # still no clean_users

    _land_users_and_clean(runner, data_dir)
    # The pending clean_events update of 2026-11-10 is let through; days whose clean partition
    # never ran stay blocked (no passing check), and the users update itself triggers nothing.
    assert ticker.tick() == {FEATURES: {"2026-11-10"}}
    assert ticker.tick() == {}
    # The next day's users snapshot updates clean_users, and still triggers no features.
    _land_users_and_clean(runner, data_dir, "2026-11-02")
    assert ticker.tick() == {}


def test_users_snapshot_requests_clean_users(data_dir, runner, ticker):
    ticker.tick()
    write_landing(data_dir, "users", USERS_DAY, "users.csv", USERS_CSV)
    runner.run("raw_users", partition=USERS_DAY)
    # Every raw_users landing day feeds the one (unpartitioned, SCD2) clean_users.
    assert ticker.tick() == {CLEAN_USERS: {None}}
    assert ticker.tick() == {}


def test_failed_blocking_check_holds_back_the_features_partition(data_dir, runner, ticker):
    ticker.tick()
    _land_users_and_clean(runner, data_dir)
    # 8 of 10 rows break the contract (event_type 'bogus'): 80% quarantined > 10% allowed.
    write_landing(data_dir, "events", "2026-11-10", "bad.csv", _events("2026-11-10", "b", n=10, bogus=8))
    write_landing(data_dir, "events", "2026-11-09", "good.csv", _events("2026-11-09", "g"))
    runner.run("raw_events", range_=("2026-11-09", "2026-11-10"))
    requested = set(days("2026-11-06", "2026-11-11"))
    assert ticker.tick() == {CLEAN: requested, FEATURES: requested}
    assert ticker.tick() == {}  # requested once: their runs are in progress

    # Those runs are canceled and the clean days run by hand, one failing its blocking check.
    ticker.cancel_submitted()
    bad = runner.run("clean_events", partition="2026-11-10", expect_success=False)  # blocking check failed: step fails
    [evaluation] = contract_evaluations(bad)
    assert evaluation.asset_check_key == CONTRACT and evaluation.passed is False
    good = runner.run("clean_events", partition="2026-11-09")
    assert [e.passed for e in contract_evaluations(good)] == [True]

    # The good day flows on; the day with the failed check does not.
    assert ticker.tick() == {FEATURES: {"2026-11-09"}}
    assert ticker.tick() == {}


def test_failed_check_stops_features_inside_a_chained_run(data_dir, runner, instance):
    """What makes in-tick chaining safe: clean and features in one run, the clean check fails."""
    _land_users_and_clean(runner, data_dir)
    write_landing(data_dir, "events", "2026-11-10", "bad.csv", _events("2026-11-10", "b", n=10, bogus=8))
    runner.run("raw_events", partition="2026-11-10")
    result = runner.run("clean_events", "user_daily_features", partition="2026-11-10", expect_success=False)
    assert [m.asset_key for m in result.get_asset_materialization_events()] == [CLEAN]
    assert instance.get_latest_materialization_event(FEATURES) is None


def test_range_backfill_gates_features_per_partition(data_dir, runner, ticker):
    """A single-run range backfill of clean partitions, one failing its contract: automation builds
    features for exactly the partitions that passed, as it does after one-partition runs."""
    ticker.tick()
    _land_users_and_clean(runner, data_dir)
    write_landing(data_dir, "events", "2026-11-08", "good.csv", _events("2026-11-08", "g8"))
    # 8 of 10 rows break the contract (event_type 'bogus'): 80% quarantined > 10% allowed.
    write_landing(data_dir, "events", "2026-11-09", "bad.csv", _events("2026-11-09", "b", n=10, bogus=8))
    write_landing(data_dir, "events", "2026-11-10", "good.csv", _events("2026-11-10", "g10"))
    runner.run("raw_events", range_=("2026-11-08", "2026-11-10"))
    assert ticker.tick() == {
        CLEAN: set(days("2026-11-05", "2026-11-11")),
        FEATURES: set(days("2026-11-05", "2026-11-11")),
    }
    assert ticker.tick() == {}  # requested once: their runs are in progress

    # Those runs are canceled; the UI's backfill of three days is one run, which fails because one
    # day broke its contract.
    ticker.cancel_submitted()
    backfill = runner.run("clean_events", range_=("2026-11-08", "2026-11-10"), expect_success=False)
    assert {e.partition: e.passed for e in contract_evaluations(backfill) if e.partition} == {
        "2026-11-08": True,
        "2026-11-09": False,
        "2026-11-10": True,
    }
    assert sorted(m.partition for m in backfill.get_asset_materialization_events()) == days("2026-11-08", "2026-11-10")

    assert ticker.tick() == {FEATURES: {"2026-11-08", "2026-11-10"}}
    assert ticker.tick() == {}
