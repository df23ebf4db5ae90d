"""Pipeline benchmark: the platform, launched as a user would, against its limit and the seeds' way.

    .venv/bin/python benchmarks/pipeline_bench.py [--events 1000000] [--days 5] [--repeat 3] [--large]

(`make bench` installs the `perf` extra and runs this; benchmarks/README.md says what is measured.)

On the demo generator's landing files (`pipeline_data`), four contenders build
user_daily_features from scratch, each in processes of its own, round after round so that all
see the same background load:

1. platform: fresh DAGSTER_HOME and warehouse, then the CLI range backfills a user runs, each a
   single run with its checks (`pipeline_platform`): the default, clean and curated tables as
   Apache Iceberg tables in the local catalog (docs/scaling.md); `platform_warehouse` the same with
   them as DuckDB tables of the warehouse file (`ML_PLATFORM_LAKE_TABLES=false`, the default until
   the lake tables were): what the lake costs, or saves;
2. script: one hand-written DuckDB SQL script, no orchestration (`pipeline_script`);
3. layered: the same script persisting the raw layer first and reading the events back from it,
   as the platform does (`pipeline_script --layers`): the limit for the platform's own layout;
4. pandas: the same pipeline in pandas (`pipeline_pandas`).

Each is measured from outside (`pipeline_measure`: wall, CPU of the process tree, peak RSS of
the tree and of its largest process); the platform's own step times come from its event log.
The outputs are asserted equal (`pipeline_report.compare`), then the medians, the ratios and the
machine go to benchmarks/results/pipeline.{json,md,png}.

`--large` adds the growth curve at 10 M and 30 M events (pandas is skipped above
`--pandas-max-events`, where it would not fit in memory) and the peak RSS of one 10 M-row
landing day taken through raw_events and clean_events with its blocking contract check.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the sibling modules, whatever the working directory

import pipeline_data  # noqa: E402
import pipeline_measure  # noqa: E402
import pipeline_platform  # noqa: E402
import pipeline_report  # noqa: E402

PACKAGES = ("dagster", "duckdb", "pandas", "pyarrow", "numpy")
CONTENDERS = ("platform", "platform_warehouse", "script", "layered", "pandas")
# The platform contenders, and the settings each runs with.
PLATFORMS = {"platform": {}, "platform_warehouse": {"ML_PLATFORM_LAKE_TABLES": "false"}}
ASSET_STEPS = {"raw": ("raw_events",), "clean": ("clean_events",), "features": ("user_daily_features",)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, action="append", help="event rows (repeatable; default 1000000)")
    parser.add_argument("--days", type=int, default=5, help="landing days the events spread over")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds at the smallest size (1 above it)")
    parser.add_argument("--large", action="store_true", help="also 10 M and 30 M events, and the 10 M-row partition")
    parser.add_argument(
        "--partition-events", type=int, help="rows of the one-day partition (default: 10 M with --large)"
    )
    parser.add_argument("--pandas-max-events", type=int, default=10_000_000, help="pandas is skipped above this")
    parser.add_argument("--max-base-events", type=int, default=1_000_000, help="larger inputs copy a generated base")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/ml_platform_pipeline_bench"))
    parser.add_argument("--out-dir", type=Path, default=HERE / "results")
    parser.add_argument(
        "--no-profile", dest="profile", action="store_false", help="skip the statement profile (pipeline_profile)"
    )
    args = parser.parse_args(argv)
    args.events = sorted(set(args.events or [1_000_000] + ([10_000_000, 30_000_000] if args.large else [])))
    if args.large and args.partition_events is None:
        args.partition_events = 10_000_000
    return args


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "?")
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    ram = int(next(ln.split()[1] for ln in meminfo if ln.startswith("MemTotal"))) / 1024**2
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": ram,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "versions": {p: importlib.metadata.version(p) for p in PACKAGES},
        "loadavg_before": Path("/proc/loadavg").read_text().split()[0],
    }


def run_platform(inp: pipeline_data.Input, work: Path, log: Path, settings: dict[str, str]) -> dict:
    env = pipeline_platform.setup(work, inp.data_dir / "landing") | settings
    measures = {}
    for name, cmd in pipeline_platform.commands(inp.landing_days, inp.event_days):
        m = pipeline_measure.run(cmd, env=env, log=log)
        if m.returncode:
            raise RuntimeError(f"platform: `{' '.join(cmd)}` failed ({m.returncode}); see {log}")
        measures[name] = m.as_dict()
    runs = _runs(env)
    total = _sum(measures)
    total["step_s"] = sum(sum(r["steps_s"].values()) for r in runs)
    total["steps_by_asset"] = {
        asset: sum(r["steps_s"].get(asset, 0.0) for r in runs) for asset in pipeline_platform.ASSETS
    }
    total["commands"] = measures
    total["runs"] = runs
    total["output"] = str(work / "data" / "warehouse.duckdb")
    return total


def _runs(env: dict) -> list[dict]:
    text = subprocess.run(
        [sys.executable, str(HERE / "pipeline_platform.py"), "steps"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(text)


def _sum(measures: dict[str, dict]) -> dict:
    return {
        "wall_s": sum(m["wall_s"] for m in measures.values()),
        "cpu_s": sum(m["cpu_s"] for m in measures.values()),
        "peak_tree_rss_mib": max(m["peak_tree_rss_mib"] for m in measures.values()),
        "peak_process_rss_mib": max(m["peak_process_rss_mib"] for m in measures.values()),
    }


def run_local(name: str, inp: pipeline_data.Input, work: Path, log: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    first, last = (d.isoformat() for d in inp.event_days)
    out = work / ("features.parquet" if name == "pandas" else f"{name}.duckdb")
    program = (
        [str(HERE / "pipeline_script.py"), "--layers"] if name == "layered" else [str(HERE / f"pipeline_{name}.py")]
    )
    cmd = [sys.executable, *program, str(inp.data_dir), str(out), first, last]
    m = pipeline_measure.run(cmd, log=log)
    if m.returncode:
        raise RuntimeError(f"{name} failed ({m.returncode}); see {log}")
    result = {**m.as_dict(), "output": str(out)}
    phases = out.with_suffix(".phases.json")
    if phases.exists():
        result["phases_s"] = json.loads(phases.read_text())
    return result


def _median(rounds: list[dict]) -> dict:
    keys = [k for k, v in rounds[0].items() if isinstance(v, float | int)]
    med = {k: statistics.median(r[k] for r in rounds) for k in keys}
    if "steps_by_asset" in rounds[0]:
        med["steps_by_asset"] = {
            a: statistics.median(r["steps_by_asset"][a] for r in rounds) for a in rounds[0]["steps_by_asset"]
        }
        med["last_round"] = {k: rounds[-1][k] for k in ("commands", "runs")}
    if "phases_s" in rounds[0]:
        med["phases_s"] = {p: statistics.median(r["phases_s"][p] for r in rounds) for p in rounds[0]["phases_s"]}
    med["rounds"] = [{k: r[k] for k in keys} for r in rounds]
    return med


def bench_size(args, events: int, contenders: list[str], log: Path) -> dict:
    inp = pipeline_data.prepare(args.work_dir, args.days, events, args.seed, args.max_base_events)
    print(f"== {inp.events:,} events over {args.days} landing days ({inp.data_dir})", flush=True)
    skipped = {}
    if "pandas" in contenders and inp.events > args.pandas_max_events:
        contenders = [c for c in contenders if c != "pandas"]
        skipped["pandas"] = f"above --pandas-max-events={args.pandas_max_events:,} (would not fit in memory)"
    rounds: dict[str, list[dict]] = {c: [] for c in contenders}
    repeat = args.repeat if events == args.events[0] else 1
    for i in range(repeat):
        for name in contenders:
            work = args.work_dir / "runs" / f"{name}-{inp.events}"
            r = run_platform(inp, work, log, PLATFORMS[name]) if name in PLATFORMS else run_local(name, inp, work, log)
            rounds[name].append(r)
            extra = f", steps {r['step_s']:.2f} s" if "step_s" in r else ""
            print(
                f"  round {i + 1} {name}: wall {r['wall_s']:.2f} s, CPU {r['cpu_s']:.2f} s{extra}, "
                f"peak RSS {r['peak_tree_rss_mib']:,.0f} MiB (largest process {r['peak_process_rss_mib']:,.0f})",
                flush=True,
            )
    equality = pipeline_report.compare({c: rounds[c][0]["output"] for c in contenders})
    print(f"  outputs equal: {equality}", flush=True)
    size = {
        "events": inp.events,
        "days": args.days,
        "factor": inp.factor,
        "contenders": {c: _median(rounds[c]) for c in contenders},
        "skipped": skipped,
        "equality": equality,
    }
    size["ratios"] = pipeline_report.ratios(size)
    return size


def bench_partition(args, log: Path) -> dict:
    """Peak memory of one big landing day through raw_events and clean_events, checks included."""
    inp = pipeline_data.prepare(args.work_dir, 1, args.partition_events, args.seed, args.max_base_events)
    print(f"== one partition of {inp.events:,} events ({inp.data_dir})", flush=True)
    day = inp.landing_days[1].isoformat()
    work = args.work_dir / "runs" / f"partition-{inp.events}"
    env = pipeline_platform.setup(work, inp.data_dir / "landing")
    measures = {}
    for asset in ("raw_events", "clean_events"):
        cmd = [pipeline_platform.DAGSTER, "asset", "materialize", "-m", "ml_platform.definitions"]
        m = pipeline_measure.run([*cmd, "--select", asset, "--partition", day], env=env, log=log)
        if m.returncode:
            raise RuntimeError(f"partition run of {asset} failed; see {log}")
        measures[asset] = m.as_dict()
        print(f"  {asset}: {m}", flush=True)
    runs = _runs(env)
    return {
        "events": inp.events,
        "partition": day,
        **_sum(measures),
        "step_s": sum(sum(r["steps_s"].values()) for r in runs),
        "commands": measures,
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    contenders = [c for c in args.contenders.split(",") if c]
    args.work_dir.mkdir(parents=True, exist_ok=True)
    log = args.work_dir / "pipeline.log"
    result = {
        "benchmark": "pipeline",
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "repeat": args.repeat,
        "days": args.days,
        "seed": args.seed,
        "targets": pipeline_report.TARGETS,
        "sizes": [],
    }
    started = time.perf_counter()
    for events in args.events:
        result["sizes"].append(bench_size(args, events, contenders, log))
    if args.profile and "platform" in contenders:
        # Where the platform's step time goes, at the smallest size (pipeline_profile's docstring).
        out = args.out_dir / "pipeline.profile.json"
        cmd = [sys.executable, str(HERE / "pipeline_profile.py"), "--work-dir", str(args.work_dir)]
        subprocess.run([*cmd, "--events", str(result["sizes"][0]["events"]), "--out", str(out)], check=True)
        result["profile"] = json.loads(out.read_text())
    if args.partition_events:
        result["partition"] = bench_partition(args, log)
    result["total_s"] = time.perf_counter() - started
    for path in pipeline_report.write(result, args.out_dir):
        print(f"wrote {path}")
    print(pipeline_report.markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
