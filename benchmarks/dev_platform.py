"""A `dagster dev` started as `make dev` starts it, for the dev benchmarks (`dev_bench.py`).

`started_platform(repo, work)` does in isolation what `make dev` does: the demo week in a fresh
data folder (`python -m ml_platform.demo generate --days 7 --events-per-day 2000 --seed 7`,
untimed), a fresh DAGSTER_HOME holding the repository's dagster.yaml and migrated before anything
else opens it (two processes migrating one new SQLite home race), the fake weather API on a free
port, then `dagster dev -w workspace.yaml` in its own process group, with the platform's default
sensor interval. On exit both process groups are killed (dagster dev can ignore SIGTERM).

It reuses the GraphQL helpers of `platform_tests/platform_server.py` (`Platform`); `run_phases`
splits each run into queued, launching and working from the run's event log.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "platform_tests"))  # the GraphQL helpers of the e2e tests

from platform_server import Platform, launch_dagster_dev  # noqa: E402

_RUNS_QUERY = """
query ($limit: Int) { runsOrError(limit: $limit) { __typename ... on Runs { results {
  runId status creationTime startTime endTime assetSelection { path } tags { key value } } } } }
"""


@dataclass
class RunTiming:
    run_id: str
    status: str
    assets: list[str]
    partition: str | None
    trigger: str
    created: float  # Unix time the run was submitted (queued)
    dequeued: float | None  # the daemon took it off the queue and asked the launcher to start it
    started: float | None  # the run's process is up, code location loaded (RUN_START)
    ended: float | None
    steps_started: float | None = None  # the first step started (its pool slot, if any, obtained)
    steps_ended: float | None = None  # the last step ended

    @property
    def queued_s(self) -> float | None:
        return None if self.dequeued is None else self.dequeued - self.created

    @property
    def launch_s(self) -> float | None:
        return None if self.started is None or self.dequeued is None else self.started - self.dequeued

    @property
    def work_s(self) -> float | None:
        return None if self.started is None or self.ended is None else self.ended - self.started

    @property
    def steps_s(self) -> float | None:
        """From the first step's start to the last step's end: the part of `work_s` that is steps."""
        return None if self.steps_started is None or self.steps_ended is None else self.steps_ended - self.steps_started


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def generate_demo(repo: Path, data_dir: Path, days: int, events_per_day: int, seed: int) -> None:
    subprocess.run(
        [sys.executable, "-m", "ml_platform.demo", "generate", "--days", str(days)]
        + ["--events-per-day", str(events_per_day), "--seed", str(seed), "--data-dir", str(data_dir)],
        cwd=repo,
        env=_env(repo, data_dir, None),
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _env(repo: Path, data_dir: Path, home: Path | None) -> dict[str, str]:
    env = {
        **os.environ,
        "ML_PLATFORM_DATA_DIR": str(data_dir),
        # The repository under test first (a checkout of another commit, for a before/after).
        "PYTHONPATH": os.pathsep.join(filter(None, [str(repo / "platform"), os.environ.get("PYTHONPATH")])),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("ML_PLATFORM_WAREHOUSE", "ML_PLATFORM_SENSOR_INTERVAL", "ML_PLATFORM_WEATHER_API_URL"):
        env.pop(name, None)  # as `make dev` runs it: every default
    # `make dev` makes a random pseudonym key on first start when none is set; so does this.
    env.setdefault("ML_PLATFORM_PSEUDONYM_KEY", secrets.token_hex(32))
    if home is not None:
        env["DAGSTER_HOME"] = str(home)
    return env


def kill_group(process: subprocess.Popen) -> None:
    """SIGTERM to the process group we started, SIGKILL after 5 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


@contextlib.contextmanager
def started_platform(
    repo: Path, work: Path, dagster_yaml: Path | None = None, weather_api: bool = True
) -> Iterator[tuple[Platform, float]]:
    """Yields the platform and the Unix time `dagster dev` was started (demo data already landed).
    `weather_api`: the demo's weather API runs and is configured (without it, its sensor and
    schedule start stopped, so they request no run)."""
    data_dir, home = work / "data", work / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(dagster_yaml or repo / "dagster.yaml", home / "dagster.yaml")
    env = _env(repo, data_dir, home)
    subprocess.run(
        [sys.executable, "-m", "dagster", "instance", "migrate"], cwd=repo, env=env, check=True, capture_output=True
    )
    api_port, port = free_port(), free_port()
    log = (work / "dagster_dev.log").open("ab")
    api = None
    if weather_api:
        env["ML_PLATFORM_WEATHER_API_URL"] = f"http://127.0.0.1:{api_port}"
        api = subprocess.Popen(
            [sys.executable, "-m", "ml_platform.demo.weather_api", "--port", str(api_port)],
            cwd=repo,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started = time.time()
    process = launch_dagster_dev(env, port, work / "dagster_dev.log", repo)
    platform = Platform(f"http://127.0.0.1:{port}", data_dir, home, process, work / "dagster_dev.log", env)
    try:
        yield platform, started
    finally:
        kill_group(process)
        if api is not None:
            kill_group(api)
        log.close()


def all_runs(platform: Platform, limit: int = 1000) -> list[dict]:
    data = platform.graphql(_RUNS_QUERY, {"limit": limit})["runsOrError"]
    if data["__typename"] != "Runs":
        raise RuntimeError(str(data))
    return data["results"]


def run_phases(platform: Platform, run: dict) -> RunTiming:
    """Queued (submitted -> dequeued), launching (dequeued -> RUN_START: process start, imports,
    code location load) and working (RUN_START -> run end) of one run, from its event log."""
    events = platform.run_log(run["runId"])
    first, last = {}, {}
    for e in events:
        first.setdefault(e.kind, e.time)
        last[e.kind] = e.time
    step_ends = [last[k] for k in ("ExecutionStepSuccessEvent", "ExecutionStepFailureEvent") if k in last]
    tags = {t["key"]: t["value"] for t in run["tags"]}
    trigger = tags.get("dagster/sensor_name") or tags.get("dagster/schedule_name") or "manual"
    return RunTiming(
        run_id=run["runId"],
        status=run["status"],
        assets=["/".join(k["path"]) for k in run["assetSelection"] or []],
        partition=tags.get("dagster/partition"),
        trigger=trigger,
        created=run["creationTime"],
        dequeued=first.get("RunDequeuedEvent", first.get("RunStartingEvent")),
        started=run["startTime"] or first.get("RunStartEvent"),
        ended=run["endTime"],
        steps_started=first.get("ExecutionStepStartEvent"),
        steps_ended=max(step_ends) if step_ends else None,
    )
