"""Benchmark of the point-in-time training-set API against a hand-written ASOF join and Feast.

    .venv-bench/bin/python benchmarks/point_in_time.py [--entities N] [--feature-rows N] [--repeat N]

(`make bench-pit` builds that venv and runs this; benchmarks/README.md says what is measured.)

One run generates the data once (`pit_data`), then starts each contender (`pit_contenders`) in
a worker process of its own (`pit_worker`), set up untimed. The workers are then asked in turn
for one run each, round after round: `--warmup` untimed rounds, then `--repeat` timed ones
(Feast, being slow, takes part in `--slow-repeat` of them, spread out), so that every contender
sees the same background load, and each one's peak RSS is its own. The outputs are then
checked against each other and the targets (`pit_report`), the results written to
benchmarks/results/point_in_time.{json,md}. The exit status is 1 when a target or a check of the
API's values is missed or a contender failed, after everything is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the sibling modules, whatever the working directory

import pit_profile  # noqa: E402
import pit_report  # noqa: E402
import pit_worker  # noqa: E402
from pit_contenders import CONTENDERS  # noqa: E402
from pit_data import Inputs, Spec, describe, generate  # noqa: E402

PACKAGES = ("duckdb", "pandas", "pyarrow", "numpy", "feast", "dask", "ibis-framework", "dagster")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = Spec()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=defaults.entity_rows, help="entity rows (training examples)")
    parser.add_argument("--feature-rows", type=int, default=defaults.feature_rows, help="rows of the feature table")
    parser.add_argument("--keys", type=int, default=defaults.keys, help="distinct users in the feature table")
    parser.add_argument("--ttl-hours", type=int, default=defaults.ttl_hours)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each DuckDB and pandas contender")
    parser.add_argument("--slow-repeat", type=int, default=2, help="timed runs of each Feast contender")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before the timed ones")
    parser.add_argument(
        "--contenders",
        default=",".join(CONTENDERS),
        help=f"comma-separated subset of {', '.join(CONTENDERS)}",
    )
    parser.add_argument(
        "--no-feast-created-filter",
        dest="feast_created_filter",
        action="store_false",
        help="run Feast without filter_by_created_timestamp (its default, which leaks late rows)",
    )
    parser.add_argument(
        "--no-profile", dest="profile", action="store_false", help="skip profiling the API's query afterwards"
    )
    parser.add_argument("--out-dir", type=Path, default=HERE / "results")
    parser.add_argument("--work-dir", type=Path, help="where the data goes (default: a temporary directory)")
    parser.add_argument("--keep-work", action="store_true", help="keep the generated data and outputs")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: run one contender in this process
    return parser.parse_args(argv)


def spec_of(args: argparse.Namespace) -> Spec:
    return Spec(
        entity_rows=args.entities,
        feature_rows=args.feature_rows,
        keys=args.keys,
        ttl_hours=args.ttl_hours,
        seed=args.seed,
    )


def inputs_in(work_dir: Path) -> Inputs:
    return Inputs(work_dir / "warehouse.duckdb", work_dir / "features.parquet", work_dir / "entities.parquet")


# --- the worker's side -------------------------------------------------------------------------


def child(args: argparse.Namespace) -> int:
    _ensure_platform_importable()
    options = {"work_dir": args.work_dir, "feast_created_filter": args.feast_created_filter}
    return pit_worker.serve(args.child, inputs_in(args.work_dir), dt.timedelta(hours=args.ttl_hours), options)


def _ensure_platform_importable() -> None:
    """ml_platform from platform/ when the venv does not have the project installed."""
    try:
        import ml_platform  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(HERE.parent / "platform"))


# --- timing, round by round ---------------------------------------------------------------------


def start_workers(names: list[str], args: argparse.Namespace) -> tuple[dict, dict]:
    """One worker per contender, set up one after the other; those whose setup failed, apart."""
    workers, failed = {}, {}
    for name in names:
        command = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--work-dir", str(args.work_dir)]
        command += ["--ttl-hours", str(args.ttl_hours)]
        if not args.feast_created_filter:
            command.append("--no-feast-created-filter")
        print(f"setting up {name}: {CONTENDERS[name].label}", flush=True)
        try:
            workers[name] = pit_worker.Worker(name, command, args.work_dir)
        except pit_worker.WorkerFailed as error:
            print(f"  failed: {error}")
            failed[name] = str(error)
    return workers, failed


def rounds_of(name: str, args: argparse.Namespace) -> set[int]:
    """The timed rounds a contender takes part in: all, or --slow-repeat of them spread evenly."""
    if not CONTENDERS[name].slow or args.slow_repeat >= args.repeat:
        return set(range(args.repeat))
    return {i * args.repeat // args.slow_repeat for i in range(args.slow_repeat)}


def time_rounds(workers: dict, args: argparse.Namespace) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Warm-up rounds, then timed rounds; each round asks every worker in turn for one run."""
    times = {name: [] for name in workers}
    failed = {}
    schedule = [("warm-up", set(workers))] * args.warmup
    schedule += [("timed", {n for n in workers if r in rounds_of(n, args)}) for r in range(args.repeat)]
    for index, (kind, taking_part) in enumerate(schedule):
        for name in [n for n in workers if n in taking_part and n not in failed]:
            try:
                seconds = workers[name].ask("run")["s"]
            except pit_worker.WorkerFailed as error:
                failed[name] = str(error)
                continue
            if kind == "timed":
                times[name].append(seconds)
        print(f"  round {index + 1}/{len(schedule)} ({kind}): " + _round_line(times, taking_part, kind), flush=True)
    return times, failed


def _round_line(times: dict[str, list[float]], taking_part: set[str], kind: str) -> str:
    if kind != "timed":
        return "done"
    return ", ".join(f"{n} {times[n][-1]:.3f} s" for n in times if n in taking_part and times[n])


def timing_of(name: str, worker: pit_worker.Worker, times: list[float]) -> dict:
    finish = worker.finish()
    return {
        "label": CONTENDERS[name].label,
        "semantics": CONTENDERS[name].semantics,
        "times_s": times,
        "best_s": min(times),
        "median_s": statistics.median(times),
        **worker.setup,
        **finish,
    }


def time_contenders(names: list[str], args: argparse.Namespace) -> dict[str, dict]:
    """Every contender's timings and memory, or the error it ended with."""
    workers, failed = start_workers(names, args)
    try:
        times, failed_running = time_rounds(workers, args)
        failed |= failed_running
        timings = {}
        for name in names:
            if name in failed:
                timings[name] = {"label": CONTENDERS[name].label, "error": failed[name].splitlines()[-1]}
            else:
                timings[name] = timing_of(name, workers[name], times[name])
        return timings
    finally:
        for worker in workers.values():
            worker.kill()


# --- the whole run ------------------------------------------------------------------------------


def machine() -> dict:
    """What the figures were measured on."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    packages = {}
    for package in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            packages[package] = importlib.metadata.version(package)
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": packages,
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
    }


def check_outputs(names: list[str], args: argparse.Namespace, spec: Spec) -> tuple[dict, dict]:
    """Row checks for every contender that finished, value checks against the API."""
    outputs = {n: pd.read_parquet(args.work_dir / f"out_{n}.parquet") for n in names}
    rows = {n: pit_report.row_check(o, spec.entity_rows) for n, o in outputs.items()}
    classes = pit_report.asof_classes(args.work_dir / "warehouse.duckdb", spec.ttl_hours)
    return rows, pit_report.value_checks(outputs, classes)


def parent(args: argparse.Namespace) -> int:
    spec = spec_of(args)
    names = [n.strip() for n in args.contenders.split(",") if n.strip()]
    unknown = sorted(set(names) - set(CONTENDERS))
    if unknown:
        raise SystemExit(f"unknown contenders {unknown}; there are {list(CONTENDERS)}")
    temporary = args.work_dir is None
    args.work_dir = Path(tempfile.mkdtemp(prefix="pit-bench-")) if temporary else args.work_dir.resolve()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    try:
        results = measure(names, args, spec)
    finally:
        if temporary and not args.keep_work:
            shutil.rmtree(args.work_dir, ignore_errors=True)
    json_path, md_path = pit_report.write(results, args.out_dir)
    print()
    print(md_path.read_text())
    print(json.dumps({"values": results["values"]}, indent=2))
    print(f"results: {json_path}, {md_path}")
    failed = [t["target"] for t in results["targets"] if t["met"] is not True]
    errors = [n for n, t in results["timings"].items() if "error" in t]
    if failed or errors:
        print(f"MISSED: {failed + [f'{n} failed' for n in errors]}")
        return 1
    return 0


def measure(names: list[str], args: argparse.Namespace, spec: Spec) -> dict:
    """Generate, time every contender, check; everything the results files hold."""
    started = time.perf_counter()
    host = machine()
    print(f"generating {spec.entity_rows:,} entity rows x {spec.feature_rows:,} feature rows in {args.work_dir}")
    generate(spec, args.work_dir)
    data = describe(args.work_dir / "warehouse.duckdb", spec)
    print(f"  generated in {time.perf_counter() - started:.1f} s: {data}")
    timings = time_contenders(names, args)
    for name, t in timings.items():
        if "error" not in t:
            print(
                f"{name}: best {t['best_s']:.3f} s, median {t['median_s']:.3f} s, peak RSS {t['peak_rss_mib']:,.0f} MiB"
            )
    finished = [n for n in names if "error" not in timings[n]]
    rows, values = check_outputs(finished, args, spec)
    profile = None
    if args.profile and "api" in finished:
        print("profiling the API's query", flush=True)
        _ensure_platform_importable()
        profile = pit_profile.profile_api(inputs_in(args.work_dir), dt.timedelta(hours=spec.ttl_hours), args.work_dir)
    host["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return {
        "spec": asdict(spec),
        "repeat": {"repeat": args.repeat, "slow_repeat": args.slow_repeat, "warmup": args.warmup},
        "feast_created_filter": args.feast_created_filter,
        "machine": host,
        "data": data,
        "timings": timings,
        "rows": rows,
        "values": values,
        "targets": pit_report.targets(timings, rows, values),
        "api_profile": profile,
        "total_s": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return child(args) if args.child else parent(args)


if __name__ == "__main__":
    sys.exit(main())
