"""Runs the code blocks of docs/*.md marked `<!-- docs-example: NAME -->` (doc_examples.py) on demo
data, and checks what the pages say they do.

Each page runs in a folder laid out as a checkout after `make dev` has caught up, copied afresh for
every page: `data/` holds the demo generator's landing files (three days ending today) and a
warehouse built from them up to the `user_activity` view; `.dagster_home/` holds the repository's
dagster.yaml; ML_PLATFORM_DATA_DIR points at `data/`. A page's blocks run in page order: Python
in this process, in one namespace per page; bash with `bash -euo pipefail`, `python` and `dagster`
being this venv's. What a page says a block does (in its comments, or the prose after it) is
checked in OUTCOMES, one entry per example: a new example needs one, and a removed one fails.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from doc_examples import DOCS, REPO, Block, marked_blocks, run_python
from helpers import TEST_PSEUDONYM_KEY, pseudonym
from ml_platform.demo import generate

MARKER = "docs-example"
BLOCKS = [block for page in sorted(DOCS.glob("*.md")) for block in marked_blocks(page, MARKER)]
PAGES = sorted({block.page for block in BLOCKS})
TODAY = dt.datetime.now(dt.UTC).date()


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """The demo's landing files and a warehouse built through `user_activity`, as `make dev` leaves them."""
    root = tmp_path_factory.mktemp("checkout")
    data = root / "data"
    home = root / ".dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    demo = generate(data, days=3, events_per_day=200, seed=4, end_date=TODAY, telemetry_hours_per_day=1)
    # Module-scoped, so not the function-scoped monkeypatch; undone even when the build fails.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ML_PLATFORM_DATA_DIR", str(data))
        mp.delenv("ML_PLATFORM_WAREHOUSE", raising=False)
        mp.setenv("ML_PLATFORM_PSEUDONYM_KEY", TEST_PSEUDONYM_KEY)
        from ml_platform.definitions import build_definitions

        defs = build_definitions()
        landing = (demo["start_date"], demo["end_date"])
        event_days = (min(demo["expected_clean_by_event_date"]), demo["end_date"])
        with dg.instance_for_test() as instance:
            for names, window in [
                (("raw_users", "raw_events"), landing),
                (("clean_users",), None),
                (("clean_events",), event_days),
                (("user_activity",), event_days),
            ]:
                tags = (
                    {"dagster/asset_partition_range_start": window[0], "dagster/asset_partition_range_end": window[1]}
                    if window
                    else {}
                )
                result = dg.materialize(
                    [defs.get_assets_def(n) for n in names],
                    instance=instance,
                    resources=defs.resources,
                    tags=tags,
                    raise_on_error=False,
                )
                assert result.success, names
    return root


def _run_page(page: Path, workdir: Path, capsys) -> tuple[dict[str, dict], dict[str, str]]:
    """Each block's namespace (Python: the page's, as it was after the block) and output, by name."""
    namespace: dict = {"__name__": "__docs_example__"}
    namespaces, outputs = {}, {}
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "ML_PLATFORM_DATA_DIR": str(workdir / "data"),
    }
    env.pop("ML_PLATFORM_WAREHOUSE", None)
    try:
        for block in (b for b in BLOCKS if b.page == page):
            if block.lang == "python":
                capsys.readouterr()
                run_python(block, namespace)
                outputs[block.name] = capsys.readouterr().out
            elif block.lang == "bash":
                done = subprocess.run(
                    ["bash", "-euo", "pipefail", "-c", block.body],
                    cwd=workdir,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                assert done.returncode == 0, f"{block.where}:\n{done.stderr[-3000:]}"
                outputs[block.name] = done.stdout + done.stderr
            else:
                raise AssertionError(f"{block.where}: a docs example is python or bash, not {block.lang!r}")
            namespaces[block.name] = dict(namespace)
    finally:
        # A page's read-only connections would hold the warehouse file.
        for value in namespace.values():
            if isinstance(value, duckdb.DuckDBPyConnection):
                value.close()
    return namespaces, outputs


def _clean_range_from_cli(ns: dict, out: str, workdir: Path) -> None:
    # One run, one step, for the three days; each partition with its own row count and contract result.
    assert out.count("RUN_SUCCESS") == 1 and out.count("STEP_SUCCESS") == 1, out[-3000:]
    days = {(TODAY - dt.timedelta(days=back)).isoformat() for back in range(3)}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(workdir / ".dagster_home"))
        with dg.DagsterInstance.get() as instance:
            [run] = instance.get_run_records()
            events = [e.dagster_event for e in instance.all_logs(run.dagster_run.run_id) if e.dagster_event]
    materialized = {
        e.step_materialization_data.materialization.partition: e.step_materialization_data.materialization.metadata
        for e in events
        if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
    }
    assert set(materialized) == days
    assert all("dagster/partition_row_count" in metadata for metadata in materialized.values())
    contract = {
        e.event_specific_data.partition: e.event_specific_data.passed
        for e in events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION and e.event_specific_data.check_name == "contract"
    }
    assert contract == {None: True, **dict.fromkeys(days, True)}  # the range's own result, and each day's


def _demo_with_problems(ns: dict, out: str, workdir: Path) -> None:
    manifest = json.loads((workdir / "data" / "demo_manifest.json").read_text())
    assert manifest["days"] == 14
    problems = dict(manifest["problems"])
    stops = dt.date.fromisoformat(problems.pop("maintenance_stops"))
    # Five problems, each on its own day, and the maintenance log no longer landing for the last three days.
    assert len(problems) == 5 and len(set(problems.values())) == 5
    maintenance = sorted(p.name for p in (workdir / "data" / "landing" / "maintenance").iterdir())
    assert maintenance[-1] == (stops - dt.timedelta(days=1)).isoformat()
    assert stops == TODAY - dt.timedelta(days=2)
    assert "12,50 EUR" not in out  # the summary is printed, not the rows
    amounts_day = workdir / "data" / "landing" / "events" / problems["amount_as_text"]
    assert any(b" EUR" in path.read_bytes() for path in amounts_day.iterdir())


def _pseudonymize(ns: dict, out: str, workdir: Path) -> None:
    ids = ns["ids"].user_id
    assert ids[0] == pseudonym("u1") and len(ids[0]) == 2 + 32
    assert pd.isna(ids[1])


def _point_in_time_rules(ns: dict, out: str, workdir: Path) -> None:
    assert out.strip() == "[10.0, 25.0, nan]"
    assert ns["training"].columns.tolist() == ["account_id", "event_timestamp", "balance"]


def _temporal_accuracy(ns: dict, out: str, workdir: Path) -> None:
    entities, exact = ns["entities"], ns["exact"]
    assert len(entities) == 5
    # Every entity row back, once, in order, with the feature computed at its exact time.
    assert exact[["user_id", "event_timestamp"]].equals(entities[["user_id", "event_timestamp"]])
    assert exact.columns.tolist() == ["user_id", "event_timestamp", "events_7d"]
    assert exact["events_7d"].notna().all()
    assert out.startswith("no temporal declaration for ['user_activity:plan']; the views' temporal features: ")


def _online_features(ns: dict, out: str, workdir: Path) -> None:
    online = ns["online"]
    # The caller's ids come back as passed, with the values current now.
    assert online.columns.tolist() == ["user_id", "spend_7d", "plan"]
    assert online.user_id.tolist() == ["U00001", "U00002"]
    assert online.plan.notna().all()


OUTCOMES: dict[str, Callable[[dict, str, Path], None]] = {
    "clean-range-from-cli": _clean_range_from_cli,
    "demo-with-problems": _demo_with_problems,
    "pseudonymize": _pseudonymize,
    "point-in-time-rules": _point_in_time_rules,
    "temporal-accuracy": _temporal_accuracy,
    "online-features": _online_features,
}


def test_every_docs_example_has_its_outcome_checked():
    names = [block.name for block in BLOCKS]
    assert len(names) == len(set(names)), "two docs examples share a name"
    assert sorted(names) == sorted(OUTCOMES)


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_docs_examples_run_as_written(page: Path, checkout: Path, tmp_path: Path, monkeypatch, capsys):
    workdir = tmp_path / "checkout"
    shutil.copytree(checkout, workdir)
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("ML_PLATFORM_DATA_DIR", str(workdir / "data"))
    monkeypatch.delenv("ML_PLATFORM_WAREHOUSE", raising=False)
    namespaces, outputs = _run_page(page, workdir, capsys)
    blocks: list[Block] = [b for b in BLOCKS if b.page == page]
    for block in blocks:
        OUTCOMES[block.name](namespaces[block.name], outputs[block.name], workdir)
