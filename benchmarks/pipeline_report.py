"""The pipeline benchmark's verdicts and outputs: equal features, the ratios, JSON, Markdown and the chart.

`compare` asserts that the contenders wrote the same user_daily_features, set-based in
DuckDB: keys, integer and text columns exactly, floats to 1e-9 relative. `write` turns the
measurements into benchmarks/results/pipeline.{json,md,png} (the PNG only when matplotlib, the
`perf` extra, is installed).
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from ml_platform import privacy
from ml_platform.warehouse import sql
from ml_platform.warehouse.extensions import load_iceberg

KEYS = ("user_id", "feature_date")
EXACT = ("event_count", "transaction_count", "unique_products", "cart_adds", "primary_device", "days_since_signup")
FLOATS = ("daily_spend", "avg_transaction_value", "max_transaction_value")
TARGETS = {"step_vs_script": 1.25, "wall_vs_script": 1.5, "pandas_vs_platform": 3.0, "rss_mib": 1024}


def _differs(a: str, b: str) -> str:
    exact = [f"{a}.{c} IS DISTINCT FROM {b}.{c}" for c in EXACT]
    floats = [
        f"(({a}.{c} IS NULL) <> ({b}.{c} IS NULL) OR abs({a}.{c} - {b}.{c}) > 1e-9 * greatest(1.0, abs({a}.{c})))"
        for c in FLOATS
    ]
    return " OR ".join([f"{a}.user_id IS NULL", f"{b}.user_id IS NULL", *exact, *floats])


def compare(outputs: dict[str, str]) -> dict:
    """Rows per contender and rows differing from the script's; raises when any differ.

    `outputs`: a Parquet file of the features, or a DuckDB database holding user_daily_features.
    """
    con = duckdb.connect()
    # The platform's user_daily_features is a view over its Iceberg table (read without extensions;
    # loaded for a table another engine wrote deletes to).
    load_iceberg(con)
    for name, path in outputs.items():
        if path.endswith(".parquet"):
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({sql.literal(path)})")
        else:
            con.execute(f"ATTACH {sql.literal(path)} AS {name}_db (READ_ONLY)")
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM {name}_db.user_daily_features")
    result = {"rows": {n: con.execute(f"SELECT count(*) FROM {n}").fetchone()[0] for n in outputs}, "differing": {}}
    for name in outputs:
        if name == "script":
            continue
        reference = "script"
        if name.startswith("platform"):
            # The platform's features hold pseudonymized user ids (docs/privacy.md), under the key
            # pipeline_platform.setup gave it: the script's ids are pseudonymized to meet them.
            privacy.bind_key(con)
            reference = f"({privacy.with_pseudonyms('SELECT * FROM script', ['user_id'])})"
        join = f"{reference} s FULL JOIN {name} o ON s.user_id = o.user_id AND s.feature_date = o.feature_date"
        result["differing"][name] = con.execute(f"SELECT count(*) FROM {join} WHERE {_differs('s', 'o')}").fetchone()[0]
    con.close()
    bad = {n: d for n, d in result["differing"].items() if d}
    if bad or min(result["rows"].values()) == 0:
        raise AssertionError(f"user_daily_features differ between contenders: {result}")
    return result


def ratios(size: dict) -> dict:
    c = size["contenders"]
    out = {}
    if "platform" in c and "script" in c:
        out["step_vs_script"] = c["platform"]["step_s"] / c["script"]["wall_s"]
        out["wall_vs_script"] = c["platform"]["wall_s"] / c["script"]["wall_s"]
    if "platform" in c and "layered" in c:
        # Against the limit for the platform's own layout: what Dagster and the platform add.
        out["step_vs_layered"] = c["platform"]["step_s"] / c["layered"]["wall_s"]
    if "platform" in c and "pandas" in c:
        out["pandas_vs_platform"] = c["pandas"]["wall_s"] / c["platform"]["wall_s"]
    if "platform" in c and "platform_warehouse" in c:
        # What the lake tables (the default) cost against warehouse tables.
        out["platform_vs_warehouse_steps"] = c["platform"]["step_s"] / c["platform_warehouse"]["step_s"]
        out["platform_vs_warehouse_wall"] = c["platform"]["wall_s"] / c["platform_warehouse"]["wall_s"]
    return out


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        "# Pipeline benchmark: the platform against a hand-written DuckDB script and pandas",
        "",
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['ram_gib']:.0f} GiB RAM; load average before the run "
        f"{m['loadavg_before']}. Medians of {result['repeat']} runs; outputs asserted equal.",
        "",
        "| events | contender | wall s | CPU s | steps s | peak RSS tree MiB | largest process MiB |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for size in result["sizes"]:
        for name, c in size["contenders"].items():
            step = f"{c['step_s']:.1f}" if "step_s" in c else "-"
            lines.append(
                f"| {size['events']:,} | {name} | {c['wall_s']:.1f} | {c['cpu_s']:.1f} | {step} "
                f"| {c['peak_tree_rss_mib']:,.0f} | {c['peak_process_rss_mib']:,.0f} |"
            )
        for name, why in size.get("skipped", {}).items():
            lines.append(f"| {size['events']:,} | {name} | skipped: {why} | | | | |")
    lines += [
        "",
        "| events | platform steps / script (≤ 1.25) | platform wall / script (≤ 1.5) | pandas / platform (≥ 3) "
        "| layered / script | platform steps / layered | platform / warehouse tables, steps | platform / warehouse tables, wall |",
    ]
    lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in result["sizes"]:
        r = size["ratios"]

        def f(key: str, r=r) -> str:
            return f"{r[key]:.2f}×" if key in r else "-"

        c = size["contenders"]
        layered = f"{c['layered']['wall_s'] / c['script']['wall_s']:.2f}×" if "layered" in c and "script" in c else "-"
        lines.append(
            f"| {size['events']:,} | {f('step_vs_script')} | {f('wall_vs_script')} | {f('pandas_vs_platform')} "
            f"| {layered} | {f('step_vs_layered')} | {f('platform_vs_warehouse_steps')} | {f('platform_vs_warehouse_wall')} |"
        )
    for size in result["sizes"]:
        for name, label in (("platform", "Platform"), ("platform_warehouse", "Platform with warehouse tables")):
            steps = size["contenders"].get(name, {}).get("steps_by_asset")
            if steps:
                per = ", ".join(f"{k} {v:.2f} s" for k, v in steps.items())
                lines.append(f"\n{label} step time at {size['events']:,} events, per asset: {per}.")
    profile = result.get("profile")
    if profile:
        ranked = sorted(profile["seconds"].items(), key=lambda kv: -kv[1])[:8]
        top = [f"{name} {seconds:.2f} s" for name, seconds in ranked]
        lines += ["", f"Profile at {profile['events']:,} events (in-process, per statement): " + "; ".join(top) + "."]
    part = result.get("partition")
    if part:
        lines += [
            "",
            f"One {part['events']:,}-row landing day through raw_events → clean_events (one partition, contract check "
            f"included): peak RSS {part['peak_tree_rss_mib']:,.0f} MiB (process tree), "
            f"{part['peak_process_rss_mib']:,.0f} MiB (largest process); steps {part['step_s']:.1f} s, "
            f"wall {part['wall_s']:.1f} s.",
        ]
    return "\n".join(lines) + "\n"


def chart(result: dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    names = sorted({n for s in result["sizes"] for n in s["contenders"]})
    for name in names:
        points = [(s["events"], s["contenders"][name]) for s in result["sizes"] if name in s["contenders"]]
        xs = [p[0] / 1e6 for p in points]
        left.plot(xs, [p[1]["wall_s"] for p in points], marker="o", label=f"{name} wall")
        if name.startswith("platform"):
            left.plot(xs, [p[1]["step_s"] for p in points], marker="o", linestyle="--", label="platform steps")
        right.plot(xs, [p[1]["peak_tree_rss_mib"] for p in points], marker="o", label=name)
    left.set(xlabel="events (millions)", ylabel="seconds", title="Time")
    right.set(xlabel="events (millions)", ylabel="MiB", title="Peak RSS (process tree)")
    right.axhline(1024, color="grey", linewidth=0.8, linestyle=":")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    m = result["machine"]
    fig.suptitle(f"Pipeline: platform vs DuckDB script vs pandas ({m['cores']} cores, {m['ram_gib']:.0f} GiB)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write(result: dict, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "pipeline.json", out_dir / "pipeline.md"]
    written[0].write_text(json.dumps(result, indent=2, sort_keys=True, default=str) + "\n")
    written[1].write_text(markdown(result))
    if chart(result, out_dir / "pipeline.png"):
        written.append(out_dir / "pipeline.png")
    return written
