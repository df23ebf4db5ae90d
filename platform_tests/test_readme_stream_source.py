"""Follows README's "Add your own stream source" to the letter, against a real broker: the source
file it shows, the producer it shows, nothing else changed.

As in test_readme_source.py, the package is copied to a temporary folder and the example source
is written there; the producer snippet runs here, against the tests' broker; the code location is
built in a fresh process that sees the broker through ML_PLATFORM_KAFKA_BOOTSTRAP_SERVERS, as
`make dev` sets it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from doc_examples import README, in_section, marked_blocks, run_python
from kafka_server import admin, delete_topic, shared_broker

REPO = Path(__file__).resolve().parents[1]
SECTION = "Add your own stream source"
TOPIC = "page_clicks"

RUN = textwrap.dedent(
    """
    import json, warnings
    warnings.filterwarnings("ignore")
    import dagster as dg
    from ml_platform.definitions import build_definitions
    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    with dg.instance_for_test() as instance:
        tick = defs.resolve_sensor_def("page_clicks_lag_sensor").evaluate_tick(
            dg.build_sensor_context(instance=instance, definitions=defs))
        [request] = tick.run_requests
        results = {}
        for name in ("raw_page_clicks", "clean_page_clicks"):
            result = dg.materialize([defs.get_assets_def(name)], instance=instance, resources=defs.resources,
                                    partition_key=request.partition_key, raise_on_error=False)
            results[name] = {e.check_name: [e.passed, e.severity.value] for e in result.get_asset_check_evaluations()}
    import duckdb
    from ml_platform import settings
    con = duckdb.connect(str(settings.warehouse_path()), read_only=True)
    print(json.dumps({
        "keys": sorted(k.to_user_string() for k in graph.get_all_asset_keys()),
        "sensors": sorted(s.name for s in defs.sensors),
        "lag": {k: v.value for k, v in tick.asset_events[0].metadata.items()},
        "checks": results,
        "raw": con.execute("SELECT record->>'click_id', kafka_topic, kafka_offset, kafka_key FROM raw_page_clicks"
                           " ORDER BY kafka_offset").fetchall(),
        "rejected": con.execute('SELECT "offset", reason FROM rejected_messages').fetchall(),
        "offsets": con.execute("SELECT topic, partition, next_offset FROM stream_offsets").fetchall(),
        "clean": con.execute("SELECT click_id, page FROM clean_page_clicks ORDER BY 1").fetchall(),
        "quarantine": con.execute("SELECT record->>'click_id', rule FROM quarantine_page_clicks").fetchall(),
    }))
    """
)


def test_readme_stream_source_works_against_a_real_broker(tmp_path, monkeypatch):
    blocks = [b for b in marked_blocks(README, "readme-example") if in_section(b, SECTION)]
    [snippet] = [b for b in marked_blocks(README, "readme-snippet") if in_section(b, SECTION)]
    assert [b.name for b in blocks] == ["platform/ml_platform/declarations/sources/page_clicks.py"]
    broker = shared_broker()
    if TOPIC in admin(broker.bootstrap).list_topics(timeout=10).topics:
        delete_topic(broker.bootstrap, TOPIC)
    monkeypatch.setenv("ML_PLATFORM_KAFKA_BOOTSTRAP_SERVERS", broker.bootstrap)
    # A single partition, so the offsets below are the order the snippet sends in.
    from kafka_server import new_topic

    new_topic(broker.bootstrap, partitions=1, name=TOPIC)
    run_python(snippet, {})

    src = tmp_path / "src"
    shutil.copytree(
        REPO / "platform" / "ml_platform", src / "ml_platform", ignore=shutil.ignore_patterns("__pycache__")
    )
    (src / blocks[0].name.removeprefix("platform/")).write_text(blocks[0].body)
    (tmp_path / "home").mkdir()
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(src),
        "ML_PLATFORM_DATA_DIR": str(tmp_path / "data"),
        "DAGSTER_HOME": str(tmp_path / "home"),
        "ML_PLATFORM_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "ML_PLATFORM_KAFKA_LIB": str(REPO / ".kafka" / "lib"),
    }
    try:
        done = subprocess.run([sys.executable, "-c", RUN], env=env, capture_output=True, text=True, timeout=300)
    finally:
        delete_topic(broker.bootstrap, TOPIC)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])

    assert {"raw_page_clicks", "clean_page_clicks"} <= set(out["keys"])
    assert "page_clicks_lag_sensor" in out["sensors"]
    assert out["lag"] == {"lag/partition_0": 5, "lag/total": 5}
    assert out["raw"] == [
        ["k1", TOPIC, 0, "v1"],
        ["k2", TOPIC, 1, "v2"],
        ["k2", TOPIC, 2, "v2"],
        ["k3", TOPIC, 3, "v1"],
    ]
    assert out["rejected"] == [[4, "not JSON"]]
    assert out["offsets"] == [[TOPIC, 0, 5]]
    assert out["checks"]["raw_page_clicks"] == {"schema": [True, "WARN"], "messages": [False, "WARN"]}
    assert out["checks"]["clean_page_clicks"]["contract"] == [False, "ERROR"]
    assert out["clean"] == [["k1", "/home"], ["k2", "/cart"]]
    assert out["quarantine"] == [["k3", "page:str_matches"]]
