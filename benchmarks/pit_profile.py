"""Where the API's time goes: its call split in two, and DuckDB's profile of the query it builds.

`point_in_time_join` first checks each feature table for ambiguous rows (a query of its own, run
at call time), then returns a lazy relation; `.df()` runs the join. DuckDB's JSON profile of that
run gives each operator's time, summed over threads (so it can exceed the wall time).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import duckdb
from pit_contenders import load_entities
from pit_data import FEATURES, Inputs

AMBIGUOUS = "SELECT count(*) FROM (SELECT 1 FROM features GROUP BY user_id, ts, created HAVING count(*) > 1)"


def _operators(node: dict) -> list[dict]:
    """The plan's operators, depth first."""
    found = []
    if "operator_name" in node:
        found.append(
            {
                "operator": node["operator_name"],
                "seconds": round(node.get("operator_timing", 0.0), 4),
                "rows": node.get("operator_cardinality"),
            }
        )
    for child in node.get("children", []):
        found += _operators(child)
    return found


def _best_of(runs: int, action) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def profile_api(inputs: Inputs, ttl: dt.timedelta, work_dir: Path, runs: int = 3) -> dict:
    """The API's call and run times (best of `runs`) and its query's top operators."""
    from ml_platform.point_in_time.join import FeatureTable, point_in_time_join

    # The feature view as the platform writes it (its frontier kept), when the api contender made it.
    view_copy = work_dir / "warehouse_view.duckdb"
    con = duckdb.connect(str(view_copy if view_copy.exists() else inputs.database), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        entities = load_entities(inputs)
        view = FeatureTable("activity", "features", ("user_id",), "ts", "created", ttl=ttl)
        features = [(view, list(FEATURES))]
        call_s = _best_of(runs, lambda: point_in_time_join(con, entities, features))
        check_s = _best_of(runs, lambda: con.execute(AMBIGUOUS).fetchone())
        relation = point_in_time_join(con, entities, features)
        run_s = _best_of(runs, relation.df)
        profile_path = work_dir / "api_profile.json"
        con.execute("PRAGMA enable_profiling = 'json'")
        con.execute(f"PRAGMA profiling_output = '{profile_path}'")
        relation.df()
        con.execute("PRAGMA disable_profiling")
        profile = json.loads(profile_path.read_text())
    finally:
        con.close()
    operators = sorted(_operators(profile), key=lambda o: o["seconds"], reverse=True)
    return {
        "call_s": round(call_s, 4),
        "ambiguity_check_query_s": round(check_s, 4),
        "join_run_s": round(run_s, 4),
        "profiled_latency_s": round(profile.get("latency", 0.0), 4),
        "profiled_cpu_s": round(profile.get("cpu_time", 0.0), 4),
        "top_operators": [o for o in operators if o["seconds"] > 0][:6],
        "query": relation.sql_query(),
    }


def markdown(profile: dict) -> list[str]:
    """A few lines saying where the API's time goes."""
    top = ", ".join(f"{o['operator']} {o['seconds']:.2f} s ({o['rows']:,} rows)" for o in profile["top_operators"])
    return [
        "Where the API's time goes (best of 3, this process): the call "
        f"{profile['call_s']:.3f} s (it runs the ambiguity check: {profile['ambiguity_check_query_s']:.3f} s"
        f" alone), then the join's `.df()` {profile['join_run_s']:.3f} s. DuckDB's profile of the join"
        f" ({profile['profiled_latency_s']:.2f} s wall, {profile['profiled_cpu_s']:.2f} s CPU), operators by"
        f" CPU time: {top}.",
        "",
    ]
