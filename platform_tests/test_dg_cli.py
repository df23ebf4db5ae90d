"""The `dg` command line works in this repository: `dg check defs` and `dg list defs` run from the
repository root with the project's venv active, configured only by `[tool.dg]` in pyproject.toml."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# Each command takes ~4-5 s here; the bound is for a hang, not for speed.
DG_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def dg_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a shell with the venv activated, an empty instance and an empty data folder."""
    tmp = tmp_path_factory.mktemp("dg")
    dagster_home = tmp / "dagster_home"
    dagster_home.mkdir()
    # The project's instance settings (telemetry off), as `make dev` does.
    shutil.copy(REPO_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    data_dir = tmp / "data"
    data_dir.mkdir()

    venv_bin = Path(sys.executable).parent
    assert shutil.which("dg", path=str(venv_bin)), (
        f"no `dg` in {venv_bin}: install the test extra (pip install -c constraints.txt -e '.[test]')"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ML_PLATFORM_", "DAGSTER_")) and k != "PYTHONPATH"}
    env.update(
        PATH=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        # What `source .venv/bin/activate` sets; dg warns when it differs from <root>/.venv.
        VIRTUAL_ENV=sys.prefix,
        DAGSTER_HOME=str(dagster_home),
        ML_PLATFORM_DATA_DIR=str(data_dir),
        # Load this checkout's platform/ even if the venv's editable install points at another one
        # (a git worktree). `dg check defs` already imports from platform/ (its working directory
        # comes from root_module); `dg list defs` imports by module name only.
        PYTHONPATH=str(REPO_ROOT / "platform"),
    )
    return env


def run_dg(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["dg", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=DG_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )


def test_dg_check_defs(dg_env):
    result = run_dg(dg_env, "check", "defs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All definitions loaded successfully." in result.stdout, result.stdout
    # No dg warning (deprecated config key, venv mismatch, ...) and no traceback.
    assert "To suppress this warning" not in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_dg_list_defs_json(dg_env):
    result = run_dg(dg_env, "list", "defs", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "To suppress this warning" not in result.stderr, result.stderr
    listed = json.loads(result.stdout)  # the whole of stdout is the JSON document

    assets = {a["asset_key"]: a for a in listed["assets"]}
    assert {"raw_events", "clean_events", "user_daily_features"} <= assets.keys(), sorted(assets)
    assert assets["raw_events"]["dependency_keys"] == []
    assert assets["clean_events"]["dependency_keys"] == ["raw_events"]
    assert "clean_events" in assets["user_daily_features"]["dependency_keys"]

    sensors = {s["name"] for s in listed["sensors"]}
    assert "automation" in sensors, sorted(sensors)
