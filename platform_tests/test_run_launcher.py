"""The launcher of `dagster dev` (ml_platform.runs.launcher): runs are forks of one fork server, and
the UI's Terminate cancels them.

A real `dagster dev` with the repository's dagster.yaml and the fake weather API. A `raw_weather`
run whose API answers slowly is running when it is terminated, as the run page's Terminate button
does (GraphQL `terminateRun`). What must hold: the run's process is a fork of the fork server
(not a process the code server spawned); the terminated run ends CANCELED, its process is gone, it
wrote nothing, and the warehouse slot it held is free, so the same partition then materializes
with exactly its rows.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ml_platform.demo.weather_api import LOCATIONS, WeatherApiServer, observations
from ml_platform.runs.launcher import process_alive
from ml_platform.warehouse import connect
from platform_server import FINISHED, Platform, running_platform

pytestmark = pytest.mark.e2e

DAY = "2026-02-01"
SLOW_SECONDS = 8.0  # each answer; under the client's 10 s timeout, so the run just keeps waiting


def _process_of(platform: Platform, run_id: str) -> int | None:
    for event in platform.run_log(run_id):
        if event.kind == "EngineEvent" and event.message.startswith("Started process for run (pid: "):
            return int(event.message.split("pid: ")[1].rstrip(")."))
    return None


def _parent_command(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    parent = int(stat.rsplit(")", 1)[1].split()[1])
    return Path(f"/proc/{parent}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def _status(platform: Platform, run_id: str) -> str:
    return next(r.status for r in platform.runs() if r.run_id == run_id)


def test_a_run_is_a_fork_and_terminate_cancels_it(tmp_path: Path, monkeypatch):
    with WeatherApiServer() as api:
        monkeypatch.setenv("ML_PLATFORM_WEATHER_API_URL", api.url)
        # Only the runs launched here: the catch-up would fetch every day since 2026-01-01.
        monkeypatch.setenv("ML_PLATFORM_API_CATCH_UP", "false")
        with running_platform(tmp_path, name="dagster_dev_run_launcher") as platform:
            _run(platform, api)  # running_platform saves dagster dev's log when this fails


def _run(platform: Platform, api: WeatherApiServer) -> None:
    platform.set_sensor("automation", running=False)
    api.faults.slow(SLOW_SECONDS, times=1)
    slow = platform.launch_run("raw_weather", DAY)
    platform.wait_for(
        lambda: any(e.kind == "ExecutionStepStartEvent" for e in platform.run_log(slow)), 60, what="the step to start"
    )
    pid = _process_of(platform, slow)
    assert pid is not None
    assert "multiprocessing.forkserver" in _parent_command(pid)
    assert ".dagster/grpc_info" not in next(r.tags for r in platform.runs() if r.run_id == slow)

    result = platform.graphql("mutation ($id: String!) { terminateRun(runId: $id) { __typename } }", {"id": slow})[
        "terminateRun"
    ]
    assert result["__typename"] == "TerminateRunSuccess", result
    platform.wait_for(lambda: _status(platform, slow) in FINISHED, 60, what="the terminated run to end")
    assert _status(platform, slow) == "CANCELED"
    platform.wait_for(lambda: not process_alive(pid, dt.datetime.now().timestamp()), 30, what="its process to exit")
    assert _weather_rows(platform) == {}

    again = platform.launch_run("raw_weather", DAY)
    platform.wait_for(lambda: _status(platform, again) in FINISHED, 90, what="the second run to end")
    assert _status(platform, again) == "SUCCESS", platform.describe_runs()
    expected = sum(len(observations(location, dt.date.fromisoformat(DAY))) for location in LOCATIONS)
    assert _weather_rows(platform)["raw_weather"] == expected


def _weather_rows(platform: Platform) -> dict[str, int]:
    """Rows of each raw weather table (the responses and the observations) that holds any: warehouse
    tables, or the warehouse's views of lake tables."""
    if not platform.warehouse_path.exists():
        return {}
    with connect(platform.warehouse_path, read_only=True) as con:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'raw_weather%'"
            ).fetchall()
        ]
        counts = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    return {t: n for t, n in counts.items() if n}
