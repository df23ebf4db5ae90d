"""The deployed topology (`deploy/dagster.yaml`) on one machine: the same instance (runs and event
logs in PostgreSQL, the queued coordinator and its limits, the pool, compute logs on S3), with only
its ECS launcher replaced by runs in folders of their own (`LocalRunLauncher`'s `run_directories`).
Each run is then a fresh process with nothing local in common with the others, as an ECS task is:
runs share PostgreSQL (Dagster's storage, the lake's catalog) and S3 (landing, lake, compute logs).
Used by `make scale-demo` and `test_production_instance.py`.
"""

from __future__ import annotations

from pathlib import Path

import yaml

DEPLOY_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "dagster.yaml"
# The only block of deploy/dagster.yaml the one-machine instance replaces.
LAUNCHER = "run_launcher"


def one_machine_instance(run_directories: Path) -> str:
    """deploy/dagster.yaml with its run launcher starting each run in a new folder under `run_directories`."""
    config = yaml.safe_load(DEPLOY_CONFIG.read_text())
    config[LAUNCHER] = {
        "module": "ml_platform.runs.launcher",
        "class": "LocalRunLauncher",
        "config": {"fork_runs": False, "run_directories": str(run_directories)},
    }
    return yaml.safe_dump(config, sort_keys=False)
