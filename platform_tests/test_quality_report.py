"""One JSON quality report per run, written by the `quality_reports` sensor from the instance.

Real runs of the events source on a real Dagster instance (monitoring_scenario: a week with a
late day and a half day, then a day whose contract fails its run); the sensor is ticked as the
daemon would, and the files it writes are read back: every check of the run, once per partition
and once for a range, with its verdict, values, thresholds and rule.
"""

from __future__ import annotations

import json

import dagster as dg
import pytest

from conftest import BuiltState, build_state
from helpers import tick
from ml_platform.contracts.quality_rules import LateArrivalRule, VolumeRule
from ml_platform.monitoring.quality_report import REPORT_SENSOR
from monitoring_scenario import BROKEN_DAY, HALF_DAY, LATE_DAY, WEEK, events_runner, run_broken_day, run_week


@pytest.fixture(scope="module")
def starting_state(tmp_path_factory) -> BuiltState:
    """The week, the broken day and the sensor's first tick, run once for the tests of `watched`:
    each gets its own copy of the data folder and instance (conftest.BuiltState)."""
    with build_state(tmp_path_factory.mktemp("quality_watched")) as (state, instance):
        runner = events_runner(instance, state.data_dir)
        (raw_week, clean_week), (raw_day, clean_day) = run_week(runner), run_broken_day(runner)
        first = tick(runner.defs, instance, REPORT_SENSOR)
        runs = {"raw_week": raw_week, "clean_week": clean_week, "raw_day": raw_day, "clean_day": clean_day}
        state.value = first, runs
    return state


@pytest.fixture
def watched(starting_state: BuiltState, instance, data_dir):
    """(events runner, first tick, runs) on the test's copies of the data folder and instance."""
    first, runs = starting_state.value
    return events_runner(instance, data_dir), first, runs


def _report(data_dir, result: dg.ExecuteInProcessResult) -> dict:
    return json.loads((data_dir / "reports" / "quality" / f"{result.run_id}.json").read_text())


def _checks(runner, asset: str) -> set[str]:
    graph = runner.defs.resolve_asset_graph()
    return {k.name for k in graph.get_check_keys_for_assets({dg.AssetKey(asset)})}


def test_every_run_gets_one_report_and_a_second_tick_writes_none(watched, data_dir, instance):
    runner, first, runs = watched
    assert first.skip_message == "wrote 4 quality report(s)"
    written = sorted(p.name for p in (data_dir / "reports" / "quality").iterdir())
    assert written == sorted(f"{r.run_id}.json" for r in runs.values())
    again = tick(runner.defs, instance, REPORT_SENSOR, first.cursor)
    assert (again.skip_message, again.cursor) == ("no run ended since the last report", first.cursor)


def test_the_range_run_report_lists_every_check_per_partition_with_values_and_thresholds(watched, data_dir):
    runner, _, runs = watched
    report = _report(data_dir, runs["clean_week"])
    assert {k: report[k] for k in ("run_id", "status", "assets", "partition_range", "summary")} == {
        "run_id": runs["clean_week"].run_id,
        "status": "SUCCESS",
        "assets": ["clean_events"],
        "partition_range": [WEEK[0], WEEK[-1]],
        # contract, late_arrivals and volume, for the range and for each of the 7 days.
        "summary": {"checks": 24, "passed": 20, "warn": 2, "error": 2},
    }
    assert report["duration_seconds"] > 0 and report["started_at"] < report["ended_at"]
    names = _checks(runner, "clean_events")
    assert names == {"contract", "late_arrivals", "volume"}
    assert [(c["check"], c["partition"]) for c in report["checks"]] == [
        (name, partition) for name in sorted(names) for partition in [None, *WEEK]
    ]
    by_key = {(c["check"], c["partition"]): c for c in report["checks"]}
    assert by_key[("volume", HALF_DAY)] == {
        "asset": "clean_events",
        "check": "volume",
        "partition": HALF_DAY,
        "verdict": "ERROR",
        "passed": False,
        "severity": "ERROR",
        "blocking": False,
        "description": (
            f"{HALF_DAY}: 200 rows against 400 expected (median of 6 previous days), "
            "10.0 robust deviations below, beyond 6"
        ),
        "rule": VolumeRule().describe(),
        "values": {"rows": 200, "history_days": 6, "judged": True, "expected_rows": 400.0, "deviation": -10.0},
        # The spread is 5 % of the median (the days do not vary): WARN beyond 3 spreads of 400.
        "thresholds": {"min_rows": 1, "warn_low": 340.0, "warn_high": 460.0},
        "details": {},
    }
    late = by_key[("late_arrivals", LATE_DAY)]
    assert (late["verdict"], late["description"], late["rule"]) == (
        "WARN",
        f"{LATE_DAY}: 120 of 400 rows (30.0%) landed after the day, limit 25%",
        LateArrivalRule().describe(),
    )
    assert (late["values"], late["thresholds"]) == (
        {"rows": 400, "late_rows": 120, "late_rate": 0.3, "beyond_tolerance_rows": 0},
        {"tolerance_days": 3},
    )
    # The range's own verdicts: the worst of its days.
    assert [(by_key[(n, None)]["verdict"]) for n in ("contract", "late_arrivals", "volume")] == [
        "PASS",
        "WARN",
        "ERROR",
    ]
    assert by_key[("volume", None)]["values"] == {"partitions": 7, "rows": 2600, "failing_partitions": 1}
    contract = by_key[("contract", WEEK[0])]
    assert (contract["verdict"], contract["severity"], contract["blocking"], contract["thresholds"]) == (
        "PASS",
        "ERROR",
        True,
        {"max_quarantined_fraction": 0.1},
    )


def test_the_failed_run_report_shows_the_broken_contract(watched, data_dir):
    _, _, runs = watched
    report = _report(data_dir, runs["clean_day"])
    assert (report["status"], report["partition"], report["summary"]) == (
        "FAILURE",
        BROKEN_DAY,
        {"checks": 3, "passed": 2, "warn": 0, "error": 1},
    )
    [contract] = [c for c in report["checks"] if c["check"] == "contract"]
    assert {k: contract[k] for k in ("partition", "verdict", "blocking", "description", "values", "thresholds")} == {
        "partition": BROKEN_DAY,
        "verdict": "ERROR",
        "blocking": True,
        "description": "CleanEvents broken: quarantined_fraction<=0.1",
        "values": {"failing_rules": 1, "failing_rows": 0, "quarantined_rows": 44, "quarantined_fraction": 0.11},
        "thresholds": {"max_quarantined_fraction": 0.1},
    }
    assert contract["details"]["failed"] == "quarantined_fraction<=0.1"
    assert [(r["rule"], r["rows"]) for r in contract["details"]["quarantined_by_rule"]] == [("event_type:isin", 44)]
    # The raw run of that day checked its files and schema, and both passed.
    raw = _report(data_dir, runs["raw_day"])
    assert [(c["check"], c["partition"], c["verdict"]) for c in raw["checks"]] == [
        ("files", BROKEN_DAY, "PASS"),
        ("schema", BROKEN_DAY, "PASS"),
    ]
