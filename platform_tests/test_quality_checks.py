"""The clean layer's quality checks: volume, completeness and late arrivals of each day.

Nine days of hand-written events (200 a day, device_type empty in 5 % of them), with four breaks
injected: a day with half the volume, a day whose device_type is 40 % empty, a day a third of
whose rows land the day after, and five rows landing 10 days after their event day (beyond the
3-day tolerance). Through raw and clean as a range backfill, then one day alone: exactly the
broken days fail, at the severity the source's rules give, with words that say what and where;
every other day passes.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from conftest import BuiltState, Runner, build_state, days, write_landing
from helpers import partition_checks, partition_metadata, run_check
from ml_platform.checks.completeness import judge_completeness
from ml_platform.checks.late_arrivals import Arrivals, judge_late_arrivals
from ml_platform.checks.profiles import Profile
from ml_platform.checks.volume import judge_volume
from ml_platform.contracts.quality_rules import (
    CompletenessRule,
    LateArrivalRule,
    QualityRules,
    Reference,
    UniquenessRule,
    VolumeRule,
)

DAYS = days("2026-03-01", "2026-03-09")
HALF_DAY, NULL_DAY = "2026-03-08", "2026-03-09"
LATE_DAY, STALE_LANDING, STALE_EVENT_DAY = "2026-03-05", "2026-03-07", "2026-02-25"
DEVICES = ("mobile", "desktop", "tablet")
ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN


def _events_csv(day: str, n: int, prefix: str = "") -> str:
    lines = ["event_id,user_id,event_type,event_time,product_id,amount,device_type,session_id"]
    for i in range(n):
        empty = i % 5 < 2 if day == NULL_DAY else i % 20 == 0
        device = "" if empty else DEVICES[i % 3]
        when = f"{day}T{i % 24:02d}:{i % 60:02d}:00Z"
        lines.append(f"{prefix}{day}-{i},u{i % 40},purchase,{when},P{i % 10},{i % 50}.5,{device},s{i % 30}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def starting_state(tmp_path_factory) -> BuiltState:
    """The nine days through raw and clean, backfilled once for the tests of `backfilled`: each
    gets its own copy of the warehouse and instance (conftest.BuiltState)."""
    from ml_platform.definitions import build_definitions

    with build_state(tmp_path_factory.mktemp("quality_backfilled")) as (state, instance):
        data_dir = state.data_dir
        runner = Runner(build_definitions(), instance, data_dir)
        for day in DAYS:
            write_landing(data_dir, "events", day, "events.csv", _events_csv(day, 100 if day == HALF_DAY else 200))
        # 100 more rows of the late day land the next day (kept: within the tolerance).
        write_landing(
            data_dir, "events", DAYS[DAYS.index(LATE_DAY) + 1], "late.csv", _events_csv(LATE_DAY, 100, "late-")
        )
        # Five rows land 10 days after their event day: quarantined, owned by their landing day.
        write_landing(data_dir, "events", STALE_LANDING, "stale.csv", _events_csv(STALE_EVENT_DAY, 5, "stale-"))
        runner.run("raw_events", range_=(DAYS[0], DAYS[-1]))
        state.value = runner.run("clean_events", range_=(DAYS[0], DAYS[-1]))
    return state


@pytest.fixture
def backfilled(starting_state: BuiltState) -> dg.ExecuteInProcessResult:
    """The clean range run; the test's `data_dir` and `instance` are copies of what it built."""
    return starting_state.value


def _levels(checks: dict[str, dg.AssetCheckEvaluation]) -> dict[str, str]:
    return {day: "pass" if e.passed else e.severity.value for day, e in sorted(checks.items())}


def test_a_day_with_half_the_volume_is_an_error_and_only_that_day(backfilled):
    volume = partition_checks(backfilled, "clean_events", "volume")
    assert _levels(volume) == {day: ("ERROR" if day == HALF_DAY else "pass") for day in DAYS}
    half = volume[HALF_DAY]
    assert half.description == (
        f"{HALF_DAY}: 100 rows against 200 expected (median of 7 previous days), 7.1 robust deviations below, beyond 6"
    )
    meta = {k: v.value for k, v in half.metadata.items()}
    assert meta == {
        "rows": 100,
        "history_days": 7,
        "min_rows": 1,
        "judged": True,
        "expected_rows": 200.0,
        # The spread is the count's Poisson noise, sqrt(200) = 14.1 (the 7 days' MAD is 0, 5 % is 10).
        "deviation": -7.071,
        "warn_low": 157.6,
        "warn_high": 242.4,
    }
    # The first five days have less history than the rule asks for: not judged, not failed.
    assert [volume[d].metadata["judged"].value for d in DAYS] == [False] * 5 + [True] * 4
    # After the half day the median still says 200: the ninth day is normal again.
    assert volume[NULL_DAY].metadata["deviation"].value == 0.0
    # The figures are each partition's materialization metadata too: the asset's Plots tab graphs them.
    plotted = partition_metadata(backfilled, "clean_events", plotted=True)
    assert [plotted[d]["quality/volume_rows"] for d in DAYS] == [200, 200, 200, 200, 300, 200, 200, 100, 200]
    assert plotted[HALF_DAY]["quality/volume_deviation"] == -7.071
    assert plotted[NULL_DAY]["quality/completeness_max_null_rate"] == 0.4
    assert "quality/volume_judged" not in plotted[HALF_DAY]  # not a number: not plotted
    run = run_check(backfilled, "clean_events", "volume")
    assert (run.passed, run.severity) == (False, ERROR)
    assert run.description.startswith(f"volume failed for {HALF_DAY}: {HALF_DAY}: 100 rows")


def test_a_column_going_40_percent_empty_is_an_error_naming_the_column(backfilled):
    completeness = partition_checks(backfilled, "clean_events", "completeness")
    assert _levels(completeness) == {day: ("ERROR" if day == NULL_DAY else "pass") for day in DAYS}
    broken = completeness[NULL_DAY]
    assert broken.description == f"{NULL_DAY}: device_type 40.0% null against 5.0% usually (+35.0%)"
    assert broken.metadata["max_null_rate"].value == 0.4
    assert broken.metadata["largest_rise"].value == 0.35
    assert broken.metadata["findings"].value == [
        {
            "column": "device_type",
            "null_rate": 0.4,
            "usual": 0.05,
            "level": "ERROR",
            "why": "40.0% null against 5.0% usually (+35.0%)",
        }
    ]
    assert broken.metadata["null_rates"].value["session_id"] == 0.0
    # The half-volume day has the usual share of empty devices: 5 of 100.
    assert completeness[HALF_DAY].metadata["null_rates"].value["device_type"] == 0.05


def test_late_rows_and_rows_beyond_the_tolerance_are_reported_on_their_days(backfilled):
    late = partition_checks(backfilled, "clean_events", "late_arrivals")
    assert _levels(late) == {day: ("WARN" if day in (LATE_DAY, STALE_LANDING) else "pass") for day in DAYS}
    assert late[LATE_DAY].description == f"{LATE_DAY}: 100 of 300 rows (33.3%) landed after the day, limit 25%"
    assert {k: v.value for k, v in late[LATE_DAY].metadata.items()} == {
        "rows": 300,
        "late_rows": 100,
        "late_rate": 0.333333,
        "beyond_tolerance_rows": 0,
        "tolerance_days": 3,
    }
    assert late[STALE_LANDING].description == (
        f"{STALE_LANDING}: 5 rows landed this day more than 3 days after their event day (quarantined)"
    )
    # The contract allows 10 % quarantined: 5 of 205 rows is within it, so the day still passes there.
    assert partition_checks(backfilled, "clean_events", "contract")[STALE_LANDING].passed


def test_rerunning_one_day_judges_it_again_from_the_stored_profiles(backfilled, runner):
    assert runner.query(
        "SELECT partition_date::VARCHAR, row_count, null_counts['device_type'] FROM partition_profiles"
        " WHERE table_name = 'clean_events' ORDER BY 1"
    ) == [
        (d, {HALF_DAY: 100, LATE_DAY: 300}.get(d, 200), {NULL_DAY: 80, HALF_DAY: 5, LATE_DAY: 15}.get(d, 10))
        for d in DAYS
    ]
    again = runner.run("clean_events", partition=HALF_DAY)
    volume = run_check(again, "clean_events", "volume")
    assert (volume.passed, volume.severity, volume.partition) == (False, ERROR, HALF_DAY)
    assert volume.description.startswith(f"{HALF_DAY}: 100 rows against 200 expected (median of 7 previous days)")
    assert runner.query(
        "SELECT count(*) FROM partition_profiles WHERE table_name = 'clean_events' AND partition_date = ?", [HALF_DAY]
    ) == [(1,)]


# The rules on hand-built profiles: the thresholds, the open day, the hard minimum.

DAY = dt.date(2026, 3, 10)
STEADY = {
    DAY - dt.timedelta(days=i): Profile(rows, {"x": rows // 10})
    for i, rows in enumerate((2000, 2010, 1990, 2005, 1995, 2000, 2002), 1)
}


@pytest.mark.parametrize(
    ("rows", "level", "deviation"),
    [
        (2000, "pass", 0.0),
        (1710, "pass", -2.9),
        (1700, "WARN", -3.0),
        (1401, "WARN", -5.99),
        (1400, "ERROR", -6.0),
        (2700, "ERROR", 7.0),
    ],
)
def test_volume_levels_follow_the_robust_deviation(rows, level, deviation):
    # Median 2000; the days' spread (MAD 5) is below the 5 % floor, so the spread is 100 rows.
    v = judge_volume(VolumeRule(), DAY, {**STEADY, DAY: Profile(rows, {})}, today=DAY + dt.timedelta(days=1))
    assert ("pass" if v.passed else v.severity.value, v.metadata["deviation"]) == (level, deviation)


def test_volume_hard_minimum_open_day_and_short_history():
    later = DAY + dt.timedelta(days=1)
    empty = judge_volume(VolumeRule(), DAY, STEADY, today=later)
    assert (empty.passed, empty.severity, empty.description) == (
        False,
        ERROR,
        "2026-03-10: 0 rows, below the minimum of 1",
    )
    # Today is still filling up: not judged, whatever its rows.
    today = judge_volume(VolumeRule(), DAY, {**STEADY, DAY: Profile(3, {})}, today=DAY)
    assert (today.passed, today.metadata["judged"]) == (True, False)
    short = judge_volume(VolumeRule(min_history=8), DAY, {**STEADY, DAY: Profile(3, {})}, today=later)
    assert (short.passed, short.metadata["judged"], short.metadata["history_days"]) == (True, False, 7)


def test_completeness_ceiling_and_rise_levels():
    rule = CompletenessRule(max_null_rate={"y": 0.2})
    profiles = {**STEADY, DAY: Profile(1000, {"x": 250, "y": 0})}
    assert judge_completeness(rule, DAY, profiles, ["x", "y"]).severity == WARN  # x: 10 % -> 25 %
    profiles[DAY] = Profile(1000, {"x": 100, "y": 201})
    ceiling = judge_completeness(rule, DAY, profiles, ["x", "y"])
    assert (ceiling.passed, ceiling.severity, ceiling.description) == (
        False,
        ERROR,
        "2026-03-10: y 20.1% null, above its ceiling of 20.0%",
    )
    profiles[DAY] = Profile(1000, {"x": 100, "y": 0})
    assert judge_completeness(rule, DAY, profiles, ["x", "y"]).passed


def test_rules_reject_thresholds_that_cannot_work():
    with pytest.raises(ValueError, match="warn_rate <= error_rate"):
        LateArrivalRule(warn_rate=0.6, error_rate=0.5)
    with pytest.raises(ValueError, match="warn_deviation <= error_deviation"):
        VolumeRule(warn_deviation=5, error_deviation=4)
    with pytest.raises(ValueError, match="within \\[0, 1\\]"):
        CompletenessRule(max_null_rate={"x": 1.5})
    with pytest.raises(ValueError, match="across_days must be at least 1"):
        UniquenessRule(across_days=0)
    with pytest.raises(ValueError, match="0 <= warn_rate <= error_rate <= 1"):
        Reference(column="user_id", table="clean_users", key="user_id", warn_rate=0.2, error_rate=0.1)
    assert QualityRules(volume=None, completeness=None, late_arrivals=None, uniqueness=None).enabled is False
    assert QualityRules(
        volume=None,
        completeness=None,
        late_arrivals=None,
        uniqueness=None,
        references=(Reference(column="user_id", table="clean_users", key="user_id"),),
    ).enabled


def test_late_arrival_levels():
    rule = LateArrivalRule()
    error = judge_late_arrivals(rule, DAY, Arrivals(rows=100, late=50, beyond_tolerance=2), 3)
    assert (error.passed, error.severity, error.description) == (
        False,
        ERROR,
        "2026-03-10: 50 of 100 rows (50.0%) landed after the day, limit 50%;"
        " 2 rows landed this day more than 3 days after their event day (quarantined)",
    )
    assert judge_late_arrivals(rule, DAY, Arrivals(rows=100, late=24, beyond_tolerance=0), 3).passed
    assert judge_late_arrivals(rule, DAY, Arrivals(rows=0, late=0, beyond_tolerance=0), 3).passed
