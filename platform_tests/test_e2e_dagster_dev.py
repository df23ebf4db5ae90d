"""End to end through a real `dagster dev`: a landed file flows raw -> clean -> features by itself.

No clicks and no in-process shortcuts: the landing sensor requests the raw partition, the
automation sensor requests the clean and feature partitions, and everything is observed over
the webserver's GraphQL API, the way the UI sees it.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest

from ml_platform.demo.generator import write_drip_file
from platform_server import FINISHED, process_group_alive, running_platform, write_demo_users

pytestmark = pytest.mark.e2e

PIPELINE_TIMEOUT = 180.0
EVENTS = 20


def _event_dates(path: Path) -> set[str]:
    with path.open(newline="") as f:
        times = [dt.datetime.fromisoformat(row["event_time"]) for row in csv.DictReader(f)]
    return {t.astimezone(dt.UTC).date().isoformat() for t in times}


def test_landed_file_reaches_features_without_clicks(tmp_path: Path, request: pytest.FixtureRequest):
    write_demo_users(tmp_path / "data")
    with running_platform(tmp_path, sensor_interval=3) as platform:
        try:
            pgid = platform.pgid
            # Lineage as the webserver sees it.
            edges = platform.lineage_edges()
            assert {
                ("raw_events", "clean_events"),
                ("clean_events", "user_daily_features"),
                ("raw_users", "clean_users"),
                ("clean_users", "user_daily_features"),
            } <= edges

            now = dt.datetime.now(dt.UTC)
            landing = now.date()
            # seq=3: a CSV file; `now` keeps every event at or before now, so none is future-dated.
            path = write_drip_file(platform.data_dir, landing, seq=3, seed=11, events=EVENTS, now=now)
            assert path.suffix == ".csv"
            event_days = _event_dates(path)
            assert event_days == {landing.isoformat()}
            day = landing.isoformat()

            def finished(asset: str, d: str) -> bool:
                """Materialized, contract check passed, and the run that did it has ended."""
                latest = platform.materializations(asset, d)
                if not latest or platform.check_status(asset, "contract", d) != "SUCCEEDED":
                    return False
                return platform.runs(runIds=[latest[0]["runId"]])[0].status in FINISHED

            def done() -> bool:
                return day in platform.materialized_partitions("raw_events") and all(
                    finished(asset, d) for asset in ("clean_events", "user_daily_features") for d in event_days
                )

            platform.wait_for(done, PIPELINE_TIMEOUT, interval=2, what=f"{day} to reach user_daily_features")

            # raw_events: requested by the landing sensor, for the landing date, and it succeeded.
            raw_runs = [r for r in platform.runs() if r.assets == ["raw_events"]]
            assert [(r.sensor, r.partition, r.status) for r in raw_runs] == [("events_landing_sensor", day, "SUCCESS")]
            raw = platform.materializations("raw_events", day)[0]
            assert raw["runId"] == raw_runs[0].run_id
            assert platform.row_count(raw) == EVENTS

            # clean and features: requested by the automation sensor, one run per partition.
            for asset in ("clean_events", "user_daily_features"):
                for d in event_days:
                    latest = platform.materializations(asset, d)[0]
                    run = next(r for r in platform.runs() if r.run_id == latest["runId"])
                    assert (run.sensor, run.partition, run.status) == ("automation", d, "SUCCESS"), run
                    check = platform.check_executions(asset, "contract", d)[0]
                    assert check["runId"] == run.run_id
                    assert check["evaluation"]["success"] is True
            # The queue takes newer days first (ml_platform.runs.queue): every run of a day is tagged
            # with its distance from today, the late-data days before the file's own day lower.
            today = dt.datetime.now(dt.UTC).date()
            # (A run the automation sensor has created but not yet submitted has no priority yet:
            # the queue's coordinator tags it on submission.)
            dated = [r for r in platform.runs() if r.partition and r.status != "NOT_STARTED"]
            assert {r.partition for r in dated} >= {day, (landing - dt.timedelta(days=1)).isoformat()}
            for run in dated:
                expected = min(1, (dt.date.fromisoformat(run.partition) - today).days)
                assert run.tags.get("dagster/priority") == str(expected), run
            clean = platform.materializations("clean_events", day)[0]
            assert platform.row_count(clean) == EVENTS  # all valid, distinct ids
        except BaseException:
            platform.save_log()
            raise
    assert not process_group_alive(pgid), "dagster dev left processes behind"
