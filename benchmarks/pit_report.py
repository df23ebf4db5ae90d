"""Checking the contenders' outputs against each other, the targets, and writing the results.

Row checks: every contender's rows against the entity rows (dropped, duplicated).
Value checks, feature by feature, NULL equal to NULL:
- the API against the full-semantics reference query: on every row;
- the API against each plain-ASOF contender (hand-written DuckDB, pandas): on the rows where the
  semantics must coincide, i.e. the latest row at or before t is unique for its (user, ts) and was
  created by t. The other rows are counted too: that is what plain ASOF gets wrong, by cause;
- the API against Feast: on every row Feast returns.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pit_profile
from pit_data import FEATURES

PLAIN_ASOF = ("asof", "pandas")
FEAST = ("feast-duckdb", "feast-file")
MAX_RATIO = 1.2


def row_check(output: pd.DataFrame, entity_rows: int) -> dict:
    """How the output's rows relate to the entity rows 0..entity_rows-1."""
    ids = output["row_id"].to_numpy()
    present = np.unique(ids)
    return {
        "rows_returned": int(len(ids)),
        "entity_rows_dropped": int(entity_rows - len(present)),
        "entity_rows_repeated": int(len(ids) - len(present)),
        "in_input_order": bool(np.array_equal(ids, np.arange(entity_rows))),
    }


def _same(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Per row: both NULL, or both set and equal (numbers compared as floats, others as text)."""
    a_null, b_null = a.isna().to_numpy(), b.isna().to_numpy()
    if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
        equal = a.astype("float64").to_numpy() == b.astype("float64").to_numpy()
    else:
        equal = a.astype(str).to_numpy() == b.astype(str).to_numpy()
    return (a_null & b_null) | (~a_null & ~b_null & equal)


def disagreements(expected: pd.DataFrame, got: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Rows present in both whose features differ (row_id and which features), and how many were compared."""
    both = expected[["row_id", *FEATURES]].merge(got[["row_id", *FEATURES]], on="row_id", suffixes=("", "__got"))
    differs = {c: ~_same(both[c], both[f"{c}__got"]) for c in FEATURES}
    mask = np.logical_or.reduce(list(differs.values()))
    return pd.DataFrame({"row_id": both["row_id"][mask], **{c: d[mask] for c, d in differs.items()}}), len(both)


def asof_classes(database: Path, ttl_hours: int) -> pd.DataFrame:
    """Per entity row, why a plain ASOF join may differ from the full semantics: the latest row at
    or before t shares its ts with another row (`tie`), or was created after t (`late`)."""
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.sql(
            """
            SELECT e.row_id, coalesce(g.n > 1, false) AS tie,
                   coalesce(g.n = 1 AND g.created > e.event_timestamp, false) AS late
            FROM entities e ASOF LEFT JOIN (
                SELECT user_id, ts, count(*) AS n, max(created) AS created FROM features GROUP BY user_id, ts
            ) g ON e.user_id = g.user_id AND e.event_timestamp >= g.ts
            ORDER BY e.row_id
            """
        ).df()
    finally:
        con.close()


def value_checks(outputs: dict[str, pd.DataFrame], classes: pd.DataFrame) -> dict:
    """Disagreements with the API's values, per contender, as the module docstring says."""
    api = outputs.get("api")
    if api is None:
        return {}
    checks = {}
    for name, output in outputs.items():
        if name == "api":
            continue
        diff, compared = disagreements(api, output)
        check = {"rows_compared": compared, "rows_differing": int(len(diff))}
        check["differing_by_feature"] = {c: int(diff[c].sum()) for c in FEATURES}
        if name in PLAIN_ASOF:
            check |= _by_cause(diff, classes)
        check["example_row_ids"] = [int(i) for i in diff["row_id"].head(5)]
        checks[name] = check
    return checks


def _by_cause(diff: pd.DataFrame, classes: pd.DataFrame) -> dict:
    """Split a plain-ASOF contender's disagreements by cause; where no cause applies they are bugs."""
    tagged = classes.assign(differs=classes["row_id"].isin(diff["row_id"]))
    must_agree = ~tagged["tie"] & ~tagged["late"]
    return {
        "rows_where_semantics_coincide": int(must_agree.sum()),
        "differing_where_semantics_coincide": int((tagged["differs"] & must_agree).sum()),
        "differing_latest_row_created_after_t": int((tagged["differs"] & tagged["late"]).sum()),
        "differing_equal_ts_tie": int((tagged["differs"] & tagged["tie"]).sum()),
    }


def targets(timings: dict[str, dict], rows: dict[str, dict], values: dict[str, dict]) -> list[dict]:
    """The issue's targets, and the value checks the API must pass, each met or not."""
    result = []

    def add(name: str, met: bool | None, detail: str) -> None:
        result.append({"target": name, "met": met, "detail": detail})

    api, asof = timings.get("api", {}).get("best_s"), timings.get("asof", {}).get("best_s")
    if api is not None and asof is not None:
        add(
            f"API within {MAX_RATIO}x of the hand-written ASOF join",
            api <= MAX_RATIO * asof,
            f"{api:.3f} s vs {asof:.3f} s: {api / asof:.2f}x (best of repeats)",
        )
    else:
        add(f"API within {MAX_RATIO}x of the hand-written ASOF join", None, "not measured")
    feast = {n: timings[n]["best_s"] for n in FEAST if timings.get(n, {}).get("best_s") is not None}
    if api is not None and feast:
        best = min(feast, key=feast.get)
        add("API faster than Feast's best store", api < feast[best], f"{api:.3f} s vs {best} {feast[best]:.3f} s")
    else:
        add("API faster than Feast's best store", None, "not measured")
    if "api" in rows:
        r = rows["api"]
        add(
            "API keeps every entity row, once, in input order",
            r["entity_rows_dropped"] == 0 and r["entity_rows_repeated"] == 0 and r["in_input_order"],
            f"{r['rows_returned']} rows, {r['entity_rows_dropped']} dropped, {r['entity_rows_repeated']} repeated",
        )
    if "reference" in values:
        v = values["reference"]
        add("API values equal the full-semantics reference", v["rows_differing"] == 0, _differ(v))
    if "asof" in values:
        v = values["asof"]
        add(
            "API values equal the hand-written ASOF join where semantics coincide",
            v["differing_where_semantics_coincide"] == 0,
            f"{v['differing_where_semantics_coincide']} of {v['rows_where_semantics_coincide']} differ",
        )
    return result


def _differ(check: dict) -> str:
    return f"{check['rows_differing']} of {check['rows_compared']} rows differ"


def markdown(results: dict) -> str:
    """The short table of results, with the machine and the checks."""
    machine, timings, rows = results["machine"], results["timings"], results["rows"]
    asof = timings.get("asof", {}).get("best_s")
    lines = [
        "# Point-in-time join benchmark",
        "",
        f"{results['data']['entity_rows']:,} entity rows x {results['data']['feature_rows']:,} feature rows"
        f" ({results['spec']['keys']:,} users, TTL {results['spec']['ttl_hours']} h), generated with seed"
        f" {results['spec']['seed']}. Wall time: best (median) of the repeats, result as a pandas DataFrame.",
        "",
        "| contender | wall s | ratio to hand-written | rows returned | rows dropped | values differing from API"
        " | peak RSS MiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, t in timings.items():
        if "error" in t:
            lines.append(f"| {t['label']} | error: {t['error']} | | | | | |")
            continue
        ratio = f"{t['best_s'] / asof:.2f}x" if asof else "-"
        r, v = rows.get(name, {}), results["values"].get(name)
        differing = f"{v['rows_differing']:,} of {v['rows_compared']:,}" if v else "-"
        lines.append(
            f"| {t['label']} | {t['best_s']:.3f} ({t['median_s']:.3f}) | {ratio} | {r.get('rows_returned', '-'):,}"
            f" | {r.get('entity_rows_dropped', '-'):,} | {differing} | {t['peak_rss_mib']:,.0f} |"
        )
    lines += ["", "| target or check | met | detail |", "| --- | --- | --- |"]
    for t in results["targets"]:
        met = {True: "yes", False: "**no**", None: "not measured"}[t["met"]]
        lines.append(f"| {t['target']} | {met} | {t['detail']} |")
    lines += [
        "",
        f"Machine: {machine['cores']} cores, {machine['ram_gib']:.0f} GiB RAM, load average"
        f" {machine['load_average_start']} at start; Python {machine['python']}; "
        + ", ".join(f"{k} {v}" for k, v in machine["packages"].items())
        + ".",
        "",
        f"Peak RSS is the contender's own process, inputs loaded included (RSS after setup: {_setup_rss(timings)}).",
        "",
    ]
    if results.get("api_profile"):
        lines += pit_profile.markdown(results["api_profile"])
    notes = [f"{t['label']}: {t['setup_notes']}" for t in timings.values() if t.get("setup_notes")]
    if notes:
        lines += ["Untimed setup: " + "; ".join(notes) + ".", ""]
    return "\n".join(lines)


def _setup_rss(timings: dict[str, dict]) -> str:
    return ", ".join(f"{n} {t['setup_rss_mib']:,.0f} MiB" for n, t in timings.items() if "setup_rss_mib" in t)


def write(results: dict, directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path = directory / "point_in_time.json", directory / "point_in_time.md"
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    md_path.write_text(markdown(results))
    return json_path, md_path
