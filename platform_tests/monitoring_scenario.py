"""The week the monitoring tests watch: real runs of the events source, with known breaks.

Seven days of events (400 a day) through raw and clean as range backfills, then one more day
alone:
- 2026-03-06: 120 of its 400 rows land the next day: `late_arrivals` fails at WARN (30 % > 25 %);
- 2026-03-07: 200 rows against a median of 400: `volume` fails at ERROR (10 robust deviations:
  the spread is 5 % of the median, 20 rows);
- 2026-03-08, run alone: 44 of 400 rows break the contract (event type `bogus`), above the
  source's 10 %: the blocking `contract` check fails at ERROR and fails its run (its 356 valid rows
  are 2.2 deviations from 400: no volume failure).

The source is the real events source with its quality rules fixed here (volume and late
arrivals on, the others off), so the expected verdicts depend on this data only.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import dagster as dg

from conftest import Runner, days, source_runner, write_landing
from ml_platform.contracts.quality_rules import LateArrivalRule, QualityRules, VolumeRule
from ml_platform.declarations.sources.events import SPEC as REAL_EVENTS
from ml_platform.monitoring import monitoring_sensors

EVENTS = dataclasses.replace(
    REAL_EVENTS,
    quality=QualityRules(volume=VolumeRule(), completeness=None, late_arrivals=LateArrivalRule(), uniqueness=None),
)
WEEK = days("2026-03-01", "2026-03-07")
LATE_DAY, HALF_DAY, BROKEN_DAY = "2026-03-06", "2026-03-07", "2026-03-08"
DAY_ROWS, HALF_ROWS, LATE_ROWS, BROKEN_ROWS = 400, 200, 120, 44


def events_csv(day: str, n: int, prefix: str = "", broken: int = 0) -> str:
    # The current schema version (v3): a raw `schema` check passes.
    lines = ["event_id,user_id,event_type,event_time,product_id,amount,device,session_id"]
    for i in range(n):
        kind = "bogus" if i < broken else "purchase"
        when = f"{day}T{i % 24:02d}:{i % 60:02d}:00Z"
        lines.append(f"{prefix}{day}-{i},u{i % 40},{kind},{when},P{i % 10},{i % 50}.5,mobile,s{i % 30}")
    return "\n".join(lines) + "\n"


def land_week(data_dir: Path) -> None:
    for day in WEEK:
        rows = {HALF_DAY: HALF_ROWS, LATE_DAY: DAY_ROWS - LATE_ROWS}.get(day, DAY_ROWS)
        write_landing(data_dir, "events", day, "events.csv", events_csv(day, rows))
    write_landing(data_dir, "events", HALF_DAY, "late.csv", events_csv(LATE_DAY, LATE_ROWS, prefix="late-"))


def land_broken_day(data_dir: Path) -> None:
    write_landing(data_dir, "events", BROKEN_DAY, "events.csv", events_csv(BROKEN_DAY, DAY_ROWS, broken=BROKEN_ROWS))


def events_runner(instance: dg.DagsterInstance, data_dir: Path) -> Runner:
    """A Runner over the events source's assets, whose definitions also hold the monitoring sensors."""
    runner = source_runner(EVENTS, instance, data_dir)
    runner.defs = dg.Definitions.merge(runner.defs, dg.Definitions(sensors=monitoring_sensors()))
    return runner


def run_week(runner: Runner) -> tuple[dg.ExecuteInProcessResult, dg.ExecuteInProcessResult]:
    """The week's raw and clean range runs (both succeed: the quality checks do not block)."""
    land_week(runner.data_dir)
    return runner.run("raw_events", range_=(WEEK[0], WEEK[-1])), runner.run("clean_events", range_=(WEEK[0], WEEK[-1]))


def run_broken_day(runner: Runner) -> tuple[dg.ExecuteInProcessResult, dg.ExecuteInProcessResult]:
    """The broken day's raw run (succeeds) and clean run (fails on its contract)."""
    land_broken_day(runner.data_dir)
    return runner.run("raw_events", partition=BROKEN_DAY), runner.run(
        "clean_events", partition=BROKEN_DAY, expect_success=False
    )
