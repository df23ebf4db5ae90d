"""Contender 1, the platform as a user runs it: Dagster's CLI, single-run range backfills.

`setup` makes a fresh DAGSTER_HOME (the repository's dagster.yaml, migrated once before any run,
so no two processes race to create its SQLite storage) and a fresh data folder whose landing
files are hard links to the input's (no copy, and the platform never follows symbolic links).
`commands` are what a user types, in order: the raw backfill of both sources over the landing
days, the users' history, then the clean events and the features over the event days. A range is
`dagster asset materialize --select <assets> --partition-range A...B`, one run holding every
selected asset with its checks (the blocking contract checks among them); assets share a command
when they share the range, as a user would select them.

Run as a script (`python pipeline_platform.py steps`, with DAGSTER_HOME set), it reads the runs'
event logs back and prints, as JSON, each run's wall time and each step's own time (STEP_START
to STEP_SUCCESS): the work the platform did, apart from launching and bookkeeping.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
ASSETS = ("raw_events", "raw_users", "clean_users", "clean_events", "user_daily_features")


def setup(work: Path, landing: Path) -> dict[str, str]:
    """A fresh instance and data folder under `work`; returns the environment the CLI runs with."""
    shutil.rmtree(work, ignore_errors=True)
    home, data = work / "dagster_home", work / "data"
    home.mkdir(parents=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    data.mkdir(parents=True)
    subprocess.run(["cp", "-al", str(landing), str(data / "landing")], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ML_PLATFORM_", "DAGSTER_"))}
    # The features pseudonymize user ids with this key; pipeline_report.compare, in this process, reads it too.
    key = os.environ.setdefault("ML_PLATFORM_PSEUDONYM_KEY", secrets.token_hex(32))
    env |= {"DAGSTER_HOME": str(home), "ML_PLATFORM_DATA_DIR": str(data), "ML_PLATFORM_PSEUDONYM_KEY": key}
    subprocess.run([DAGSTER, "instance", "migrate"], env=env, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return env


def commands(landing_days: tuple, event_days: tuple) -> list[tuple[str, list[str]]]:
    def materialize(assets: str, days: tuple | None) -> tuple[str, list[str]]:
        cmd = [DAGSTER, "asset", "materialize", "-m", "ml_platform.definitions", "--select", assets]
        return assets, cmd + (["--partition-range", f"{days[0].isoformat()}...{days[1].isoformat()}"] if days else [])

    return [
        materialize("raw_events,raw_users", landing_days),
        materialize("clean_users", None),
        materialize("clean_events,user_daily_features", event_days),
    ]


def steps() -> list[dict]:
    """Every run of the instance, oldest first: its wall time (start to end) and its steps' times."""
    import dagster as dg

    kinds = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
    kinds |= {dg.DagsterEventType.RUN_START, dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE}
    instance = dg.DagsterInstance.get()
    runs = []
    for run in reversed(instance.get_runs()):
        started, ended, step_start, step_s = None, None, {}, {}
        for entry in instance.all_logs(run.run_id, of_type=kinds):
            kind = entry.dagster_event.event_type
            if kind == dg.DagsterEventType.RUN_START:
                started = entry.timestamp
            elif kind in (dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE):
                ended = entry.timestamp
            elif kind == dg.DagsterEventType.STEP_START:
                step_start[entry.step_key] = entry.timestamp
            else:
                step_s[entry.step_key] = entry.timestamp - step_start[entry.step_key]
        runs.append(
            {
                "run_id": run.run_id,
                "status": run.status.value,
                "assets": sorted(k.to_user_string() for k in (run.asset_selection or ())),
                "run_s": (ended - started) if started and ended else None,
                "steps_s": step_s,
            }
        )
    return runs


if __name__ == "__main__" and sys.argv[1:] == ["steps"]:
    print(json.dumps(steps()))
