"""The demo with injected problems: each trips exactly the checks it should, at its severity.

`python -m ml_platform.demo generate --problems` writes 14 demo days and breaks six of them
(`ml_platform/demo/problems.py`). Everything is then built as a user's backfill would (raw, clean,
the feature views and labels), and the failing checks are compared with the list below: each
problem's own check, the consequences it really has downstream, and the demo's standing defects
(the files it always lands in three schema versions, and rows landing beyond the late tolerance).
Nothing else may fail.
"""

from __future__ import annotations

import datetime as dt
import os

import dagster as dg
import pytest

from ml_platform.demo.generator import generate
from ml_platform.demo.problems import DAY_PROBLEMS

DAYS = 14
SOURCES_IN_DEMO = ("events", "users", "products", "telemetry", "maintenance")
CURATED = (
    "user_daily_features",
    "user_activity",
    "product_features",
    "device_health",
    "churn_label",
    "device_failure_label",
)


@pytest.fixture(scope="module")
def failing(tmp_path_factory):
    """(asset, check, partition) -> severity of every failing check evaluation of the backfill."""
    data_dir = tmp_path_factory.mktemp("problems") / "data"
    # Module-scoped, so not the function-scoped monkeypatch; undone even when the build fails.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ML_PLATFORM_DATA_DIR", str(data_dir))
        mp.delenv("ML_PLATFORM_WAREHOUSE", raising=False)
        mp.setenv("ML_PLATFORM_PSEUDONYM_KEY", "problems-test-key-" + "0123456789abcdef" * 2)
        return _backfill_with_problems(data_dir)


def _backfill_with_problems(data_dir):
    end = dt.datetime.now(dt.UTC).date()
    manifest = generate(data_dir, DAYS, 2000, 7, end, telemetry_hours_per_day=4, problems=True)
    from ml_platform.definitions import build_definitions

    defs = build_definitions()
    window = ((end - dt.timedelta(days=DAYS - 1)).isoformat(), end.isoformat())
    found = {}
    with dg.instance_for_test() as instance:

        def run(*names, ranged=True):
            tags = {"dagster/asset_partition_range_start": window[0], "dagster/asset_partition_range_end": window[1]}
            result = dg.materialize(
                [defs.get_assets_def(n) for n in names],
                instance=instance,
                resources=defs.resources,
                tags=tags if ranged else {},
                raise_on_error=False,
            )
            assert result.success, names
            for e in result.get_asset_check_evaluations():
                # A range run also records the range's own verdict, without a partition: the
                # partitions' verdicts are the ones compared.
                if (e.partition is not None or not ranged) and not e.passed:
                    found[(e.asset_key.to_user_string(), e.check_name, e.partition)] = e.severity.value

        run(*(f"raw_{s}" for s in SOURCES_IN_DEMO))
        run("clean_users", ranged=False)
        run("clean_products", ranged=False)
        run("clean_events", "clean_telemetry", "clean_maintenance")
        for name in CURATED:
            run(name)
        found.update(_freshness_two_days_later(data_dir, instance))
    return found, manifest, end


def _freshness_two_days_later(data_dir, instance) -> dict:
    """The landing_freshness sensor 51 hours from now, every source but the maintenance log having
    landed an hour before (its newest files' arrival moved there); the failing evaluations."""
    from ml_platform.checks.landing_freshness import landing_freshness_sensor
    from ml_platform.declarations import discover_specs

    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=51)
    for source in SOURCES_IN_DEMO:
        if source == "maintenance":
            continue
        newest = max((data_dir / "landing" / source).iterdir())
        for path in newest.iterdir():
            stamp = (later - dt.timedelta(hours=1)).timestamp()
            os.utime(path, (stamp, stamp))
    sensor = landing_freshness_sensor(discover_specs(), clock=lambda: later)
    result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
    return {
        (e.asset_key.to_user_string(), e.check_name, e.partition): e.severity.value
        for e in result.asset_events
        if not e.passed
    }


def test_each_problem_trips_exactly_its_checks(failing):
    found, manifest, end = failing
    day = {name: (end - dt.timedelta(days=back)).isoformat() for name, back in DAY_PROBLEMS.items()}
    assert manifest["problems"] == {**day, "maintenance_stops": (end - dt.timedelta(days=2)).isoformat()}
    every_day = [(end - dt.timedelta(days=back)).isoformat() for back in range(DAYS)]
    expected = {
        # The problems themselves.
        ("user_daily_features", "drift", day["shifted_amounts"]): "ERROR",
        ("clean_events", "volume", day["half_volume"]): "ERROR",
        ("clean_telemetry", "completeness", day["null_pressure"]): "ERROR",
        ("clean_events", "references", day["orphan_users"]): "ERROR",
        ("raw_events", "schema", day["amount_as_text"]): "ERROR",
        # The maintenance log stopped: two days later it is overdue, and its finished days
        # without rows have no volume (today is not judged).
        ("raw_maintenance", "landing_freshness", None): "ERROR",
        ("clean_maintenance", "volume", (end - dt.timedelta(days=2)).isoformat()): "ERROR",
        ("clean_maintenance", "volume", (end - dt.timedelta(days=1)).isoformat()): "ERROR",
        # Real consequences: half the events make smaller users' days, and 5 % of users who have
        # a single event each shift the event counts.
        ("user_daily_features", "drift", day["half_volume"]): "ERROR",
        ("user_daily_features", "drift", day["orphan_users"]): "WARN",
    }
    for d in every_day:
        # Standing defects of the demo: two of each day's three event files carry an older schema
        # version (accepted, a WARN), and some rows land beyond the late tolerance (quarantined).
        expected.setdefault(("raw_events", "schema", d), "WARN")
        expected[("clean_events", "late_arrivals", d)] = "WARN"
    assert found == expected
