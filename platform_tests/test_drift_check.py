"""The curated layer's `drift` check: each feature's distribution against the days before (PSI).

Eight days of 250 users with one purchase each, the amounts the same spread every day; on the
eighth day every amount is four times larger. Through the real clean and feature assets as a range
backfill: only that day fails, at ERROR, naming exactly the features built from the amount; the
first day has no reference and is not judged; every other day's PSI is 0.
"""

from __future__ import annotations

import dagster as dg
import pytest

from conftest import BuiltState, Runner, build_state, days, write_landing
from helpers import partition_checks, run_check

DAYS = days("2026-03-01", "2026-03-08")
SHIFTED = "2026-03-08"
HEADER = "event_id,user_id,event_type,event_time,product_id,amount,device_type,session_id"


def _events(day: str) -> str:
    factor = 4 if day == SHIFTED else 1
    rows = [
        f"{day}-{i},u{i},purchase,{day}T10:{i % 60:02d}:00Z,P{i % 10:04d},{((i % 50) + 0.5) * factor},mobile,s{i}"
        for i in range(250)
    ]
    return "\n".join([HEADER, *rows]) + "\n"


@pytest.fixture(scope="module")
def starting_state(tmp_path_factory) -> BuiltState:
    """The eight days through user_daily_features, backfilled once for the tests of `features`:
    each gets its own copy of the warehouse and instance (conftest.BuiltState)."""
    from ml_platform.definitions import build_definitions

    with build_state(tmp_path_factory.mktemp("drift_features")) as (state, instance):
        data_dir = state.data_dir
        runner = Runner(build_definitions(), instance, data_dir)
        write_landing(
            data_dir, "users", DAYS[0], "users.csv", "user_id,signup_date,country,plan\nu1,2026-01-01,DE,free\n"
        )
        for day in DAYS:
            write_landing(data_dir, "events", day, "events.csv", _events(day))
        runner.run("raw_users", partition=DAYS[0])
        runner.run("clean_users")
        runner.run("raw_events", range_=(DAYS[0], DAYS[-1]))
        runner.run("clean_events", range_=(DAYS[0], DAYS[-1]))
        state.value = runner.run("user_daily_features", range_=(DAYS[0], DAYS[-1]))
    return state


@pytest.fixture
def features(starting_state: BuiltState) -> dg.ExecuteInProcessResult:
    """The feature range run; the test's `data_dir` and `instance` are copies of what it built."""
    return starting_state.value


def test_a_shifted_feature_distribution_is_an_error_on_its_day_only(features):
    drift = partition_checks(features, "user_daily_features", "drift")
    levels = {day: "pass" if e.passed else e.severity.value for day, e in sorted(drift.items())}
    assert levels == {day: ("ERROR" if day == SHIFTED else "pass") for day in DAYS}
    assert drift[SHIFTED].description == (
        f"{SHIFTED}: avg_transaction_value PSI 2.41 against the 28 days before (ERROR from 0.25);"
        " daily_spend PSI 2.41 against the 28 days before (ERROR from 0.25);"
        " max_transaction_value PSI 2.41 against the 28 days before (ERROR from 0.25)"
    )
    shifted = {k: v.value for k, v in drift[SHIFTED].metadata.items()}
    # Every numeric and text feature is judged; the user id (the entity) and the day are not.
    assert sorted(k for k in shifted if k.startswith("psi_")) == [
        "psi_avg_transaction_value",
        "psi_cart_adds",
        "psi_daily_spend",
        "psi_event_count",
        "psi_max_transaction_value",
        "psi_primary_device",
        "psi_transaction_count",
        "psi_unique_products",
    ]
    assert shifted["psi_event_count"] == 0.0 and shifted["max_psi"] == shifted["psi_daily_spend"]
    # The first day has no days before it: nothing judged. The others match their reference exactly.
    assert drift[DAYS[0]].metadata["features_judged"].value == 0
    assert {drift[d].metadata["max_psi"].value for d in DAYS[1:-1]} == {0.0}
    run = run_check(features, "user_daily_features", "drift")
    assert (run.passed, run.severity) == (False, dg.AssetCheckSeverity.ERROR)


def test_a_day_gets_the_same_verdict_alone_as_in_a_range(features, runner):
    in_range = partition_checks(features, "user_daily_features", "drift")[SHIFTED]
    alone = run_check(runner.run("user_daily_features", partition=SHIFTED), "user_daily_features", "drift")
    assert (alone.passed, alone.severity, alone.description) == (False, in_range.severity, in_range.description)
    assert {k: v.value for k, v in alone.metadata.items()} == {k: v.value for k, v in in_range.metadata.items()}
