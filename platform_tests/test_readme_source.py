"""Follows README's "Add your own source" and "Add a curated table or feature view" to the letter:
the files they show, nothing else changed.

The package is copied to a temporary folder so the example never touches the working tree; the
code blocks marked `<!-- readme-example: PATH -->` in README.md are written to PATH (from the
repository root: `platform/...` into the copy, `data/...` into the test's data folder; see
doc_examples.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import write_landing
from doc_examples import README, in_section, marked_blocks
from helpers import pseudonym

REPO = Path(__file__).resolve().parents[1]

RUN = textwrap.dedent(
    """
    import json, warnings
    warnings.filterwarnings("ignore")
    import dagster as dg
    from ml_platform.definitions import build_definitions
    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = sorted(k.to_user_string() for k in graph.get_all_asset_keys())
    with dg.instance_for_test() as instance:
        sensor = defs.get_sensor_def("support_tickets_landing_sensor")
        [request] = sensor(dg.build_sensor_context(instance=instance, definitions=defs)).run_requests
        for name in ("raw_support_tickets", "clean_support_tickets", "customer_daily_tickets"):
            dg.materialize([defs.get_assets_def(name)], instance=instance, resources=defs.resources,
                           partition_key=request.partition_key, raise_on_error=False)
        # The feature view as of the day after the tickets' day (its window is the 7 days before).
        dg.materialize([defs.get_assets_def("customer_tickets_7d")], instance=instance, resources=defs.resources,
                       partition_key="2026-11-21", raise_on_error=False)
    import duckdb
    import pandas as pd
    from ml_platform import settings
    from ml_platform.training import get_training_set
    con = duckdb.connect(str(settings.warehouse_path()), read_only=True)
    entities = pd.DataFrame({"customer_id": ["c1", "c1"],
                             "event_timestamp": pd.to_datetime(["2026-11-21 12:00", "2026-11-20 23:00"])})
    training = [list(map(str, row)) for row in
                get_training_set(con, entities, ["customer_tickets_7d:tickets_7d"]).fetchall()]
    print(json.dumps({
        "keys": keys,
        "partition": request.partition_key,
        "checks": sorted(k.to_user_string() for k in graph.asset_check_keys),
        "clean": con.execute("SELECT ticket_id, strftime(opened_at, '%Y-%m-%d %H:%M') FROM clean_support_tickets ORDER BY 1").fetchall(),
        "quarantine": con.execute("SELECT record->>'ticket_id', rule FROM quarantine_support_tickets").fetchall(),
        "curated": con.execute("SELECT customer_id, strftime(day, '%Y-%m-%d'), tickets, high_priority"
                               " FROM customer_daily_tickets ORDER BY 1").fetchall(),
        "curated_deps": sorted(k.to_user_string() for k in graph.get(dg.AssetKey("customer_daily_tickets")).parent_keys),
        "view": con.execute("SELECT customer_id, strftime(as_of_date, '%Y-%m-%d'), strftime(created_at, '%Y-%m-%d %H:%M'),"
                            " tickets_7d, high_priority_7d FROM customer_tickets_7d ORDER BY 1").fetchall(),
        "training": training,
    }))
    """
)


def test_readme_example_source_works_with_no_other_change(tmp_path):
    examples = [
        (block.name, block.body)
        for block in marked_blocks(README, "readme-example")
        if not in_section(block, "Add your own stream source")  # test_readme_stream_source.py runs it
    ]
    assert [path for path, _ in examples] == [
        "platform/ml_platform/declarations/sources/support_tickets.py",
        "data/landing/support_tickets/2026-11-20/tickets.csv",
        "platform/ml_platform/declarations/features/customer_daily_tickets.py",
        "platform/ml_platform/declarations/features/customer_tickets_7d.py",
    ]
    src = tmp_path / "src"
    shutil.copytree(
        REPO / "platform" / "ml_platform", src / "ml_platform", ignore=shutil.ignore_patterns("__pycache__")
    )
    data = tmp_path / "data"
    for path, body in examples:
        root, _, rest = path.partition("/")
        target = {"platform": src, "data": data}[root] / rest
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body)

    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(src),
        "ML_PLATFORM_DATA_DIR": str(data),
        "DAGSTER_HOME": str(tmp_path / "home"),
    }
    (tmp_path / "home").mkdir()
    done = subprocess.run([sys.executable, "-c", RUN], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])

    assert {"raw_support_tickets", "clean_support_tickets", "customer_daily_tickets"} <= set(out["keys"])
    assert {"clean_support_tickets:contract", "raw_support_tickets:schema", "customer_daily_tickets:contract"} <= set(
        out["checks"]
    )
    assert out["partition"] == "2026-11-20"
    # +01:00 and Europe/Berlin (UTC+1 in November) both become UTC.
    assert out["clean"] == [["t1", "2026-11-20 08:15"], ["t2", "2026-11-20 09:00"]]
    assert out["quarantine"] == [["t3", "priority:isin"]]
    assert out["curated_deps"] == ["clean_support_tickets"]
    assert out["curated"] == [["c1", "2026-11-20", 1, 1], ["c2", "2026-11-20", 1, 0]]
    # The feature view: as of 11-21, from the tickets of 11-20, known at the end of their landing day.
    assert out["view"] == [
        ["c1", "2026-11-21", "2026-11-21 00:00", 1, 1],
        ["c2", "2026-11-21", "2026-11-21 00:00", 1, 0],
    ]
    assert out["training"] == [["c1", "2026-11-21 12:00:00", "1"], ["c1", "2026-11-20 23:00:00", "None"]]


USERS = "user_id,signup_date,country,plan\n"
EVENTS = "event_id,user_id,event_type,event_time,product_id,amount\n"


def test_readme_training_set_snippet(runner, data_dir, monkeypatch):
    """README's "Build a training set", run as written on a warehouse the platform built."""
    write_landing(data_dir, "users", "2026-11-01", "users.csv", USERS + "u1,2026-10-01,DE,free\nu2,2026-10-15,US,pro\n")
    write_landing(data_dir, "users", "2026-11-07", "users.csv", USERS + "u1,2026-10-01,DE,plus\nu2,2026-10-15,US,pro\n")
    write_landing(
        data_dir,
        "events",
        "2026-11-03",
        "a.csv",
        EVENTS + "a1,u1,purchase,2026-11-03T10:00:00Z,P1,12.5\nb1,u2,page_view,2026-11-03T11:00:00Z,,\n",
    )
    write_landing(data_dir, "events", "2026-11-07", "b.csv", EVENTS + "a2,u1,purchase,2026-11-07T08:00:00Z,P2,99.0\n")
    runner.run("raw_users", range_=("2026-11-01", "2026-11-07"))
    runner.run("clean_users")
    runner.run("raw_events", range_=("2026-11-03", "2026-11-07"))
    runner.run("clean_events", range_=("2026-11-03", "2026-11-07"))
    runner.run("user_activity", range_=("2026-11-04", "2026-11-08"))

    [snippet] = [block.body for block in marked_blocks(README, "readme-snippet") if block.name == "training-set"]
    monkeypatch.chdir(data_dir.parent)
    namespace: dict = {}
    exec(compile(snippet, "README.md", "exec"), namespace)
    training = namespace["training"]
    assert list(training.columns) == ["user_id", "event_timestamp", "spend_7d", "plan"]
    # u1 at 14:05 on the 7th: the 99.0 purchase of that morning is not in the features as of the 7th,
    # and the upgrade in the 7th's snapshot is not known yet. u2 on the 8th: no purchases, plan pro.
    assert training[["user_id", "spend_7d", "plan"]].values.tolist() == [
        [pseudonym("u1"), 12.5, "free"],
        [pseudonym("u2"), 0.0, "pro"],
    ]
