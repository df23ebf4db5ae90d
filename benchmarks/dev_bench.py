"""Benchmark of the running platform: `make dev`'s catch-up on the demo week, and landed file -> features.

    .venv/bin/python benchmarks/dev_bench.py [--files 5] [--repo PATH] [--name dev]

One `dagster dev`, started as `make dev` starts it (`dev_platform.started_platform`: demo week of
7 days x 2,000 events, seed 7, every default, the default sensor interval), measured twice:

1. catch-up: from the start of `dagster dev` until the platform is *settled*: every landing day of
   the events source has raw_events, clean_events and user_daily_features materialized, no run is
   queued or in progress, and no run was created for `--quiet` seconds (longer than two automation
   ticks). The settle time is the end of the last run, minus the start. Every run is split into
   queued, launching and working (`dev_platform.run_phases`).
2. latency: then `--files` small valid event files (`write_drip_file`, today's landing date, as
   `python -m ml_platform.demo drip` writes them) land one at a time, each once the platform is idle
   again; for each: landed -> raw_events materialized -> clean_events -> user_daily_features
   materialized and its contract check passed. The median is the figure.

Results go to benchmarks/results/<name>.json (everything) and <name>.md (the table); `--repo`
runs another checkout of the platform (e.g. `git archive` of an older commit) for a before/after.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform as host
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from dev_platform import all_runs, generate_demo, run_phases, started_platform  # noqa: E402

FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
CHAIN = ("raw_events", "clean_events", "user_daily_features")


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 2) if values else None


def _loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def catch_up(platform, started: float, days: list[str], quiet: float, timeout: float) -> dict:
    """Poll until settled (module docstring); returns the figures and every run's phases."""
    platform.wait_for(lambda: _loaded(platform), 180, what="the code location to load")
    loaded = time.time()
    deadline = time.monotonic() + timeout
    while True:
        runs = all_runs(platform)
        busy = [r for r in runs if r["status"] not in FINISHED]
        last = max([r["endTime"] or 0 for r in runs] + [r["creationTime"] for r in runs] + [loaded])
        if not busy and time.time() - last >= quiet:
            missing = {a: sorted(set(days) - platform.materialized_partitions(a)) for a in CHAIN}
            if not any(missing.values()):
                break
        if time.monotonic() > deadline:
            raise AssertionError(f"not settled after {timeout:.0f}s:\n{platform.describe_runs()}")
        time.sleep(1.0)
    timings = sorted((run_phases(platform, r) for r in runs), key=lambda t: t.created)
    ended = max(t.ended or t.created for t in timings)
    by_trigger: dict[str, int] = {}
    for t in timings:
        by_trigger[t.trigger] = by_trigger.get(t.trigger, 0) + 1
    return {
        "settled_s": round(ended - started, 1),
        "location_loaded_s": round(loaded - started, 1),
        "runs": len(timings),
        "failed_runs": sum(t.status != "SUCCESS" for t in timings),
        "runs_by_trigger": by_trigger,
        "median_queued_s": _median([t.queued_s for t in timings]),
        "median_launch_s": _median([t.launch_s for t in timings]),
        "median_work_s": _median([t.work_s for t in timings]),
        "total_work_s": round(sum(t.work_s or 0 for t in timings), 1),
        "median_steps_s": _median([t.steps_s for t in timings]),
        "total_steps_s": round(sum(t.steps_s or 0 for t in timings), 1),
        "run_timings": [asdict(t) for t in timings],
    }


def _loaded(platform) -> bool:
    query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
    entries = platform.graphql(query, timeout=5)["workspaceOrError"].get("locationEntries") or []
    return any(e["name"] == "ml_platform" and e["loadStatus"] == "LOADED" for e in entries)


def _materialized_after(platform, asset: str, day: str, after: float) -> float | None:
    latest = platform.materializations(asset, day)
    if latest and int(latest[0]["timestamp"]) / 1000 > after:
        return int(latest[0]["timestamp"]) / 1000
    return None


def _checked_after(platform, asset: str, day: str, after: float) -> float | None:
    executions = platform.check_executions(asset, "contract", day)
    if executions and executions[0]["status"] == "SUCCEEDED" and executions[0]["timestamp"] > after:
        return executions[0]["timestamp"]
    return None


def _wait_idle(platform, quiet: float, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = all_runs(platform, limit=50)
        last = max([r["endTime"] or 0 for r in runs] + [r["creationTime"] for r in runs] + [0])
        if all(r["status"] in FINISHED for r in runs) and time.time() - last >= quiet:
            return
        time.sleep(1.0)
    raise AssertionError("the platform did not become idle")


def _runs_since(platform, landed: float) -> list[dict]:
    """The runs a landed file caused, oldest first: each phase's moment in seconds after landing."""
    timings = [run_phases(platform, r) for r in all_runs(platform, limit=50) if r["creationTime"] >= landed]
    moments = ("created", "dequeued", "started", "steps_started", "steps_ended", "ended")
    return [
        {"assets": t.assets, "partition": t.partition, "trigger": t.trigger}
        | {m: None if getattr(t, m) is None else round(getattr(t, m) - landed, 2) for m in moments}
        for t in sorted(timings, key=lambda t: t.created)
    ]


def latency(platform, files: int, quiet: float, timeout: float = 240) -> dict:
    from ml_platform.demo.generator import write_drip_file

    samples = []
    for i in range(files):
        _wait_idle(platform, quiet)
        now = dt.datetime.now(dt.UTC)
        day = now.date().isoformat()
        path = write_drip_file(platform.data_dir, now.date(), seq=900 + i, seed=i, events=20, now=now)
        landed = max(path.stat().st_mtime, path.stat().st_ctime)
        marks: dict[str, float] = {}
        deadline = time.monotonic() + timeout
        while len(marks) < 4:
            if time.monotonic() > deadline:
                raise AssertionError(f"{path.name}: only {sorted(marks)} after {timeout:.0f}s")
            for asset in CHAIN:
                if asset not in marks and (at := _materialized_after(platform, asset, day, landed)):
                    marks[asset] = at
            if "user_daily_features" in marks and (at := _checked_after(platform, "user_daily_features", day, landed)):
                # An execution's timestamp is when its run planned it; it passed no earlier than the
                # materialization it checks.
                marks["features_checked"] = max(at, marks["user_daily_features"])
            time.sleep(0.5)
        sample = {"file": path.name, **{k: round(v - landed, 1) for k, v in marks.items()}}
        print(f"  file {i + 1}: {sample}", flush=True)
        sample["runs"] = _runs_since(platform, landed)
        samples.append(sample)
    keys = [*CHAIN, "features_checked"]
    return {"files": samples, "median_s": {k: _median([s[k] for s in samples]) for k in keys}}


def _markdown(result: dict) -> str:
    c, lat = result["catch_up"], result["latency"]
    lines = [
        f"# `make dev` catch-up and landed file -> features ({result['name']})",
        "",
        f"{result['machine']}; load average {result['load_before']} before the run; {result['when']}.",
        "",
        "| figure | value | target |",
        "| --- | --- | --- |",
        f"| demo week settled after `dagster dev` starts | {c['settled_s']} s | <= 60 s |",
        f"| runs to settle | {c['runs']} ({c['failed_runs']} failed) | |",
        f"| median run: queued / launching / working | {c['median_queued_s']} / {c['median_launch_s']} /"
        f" {c['median_work_s']} s | |",
        f"| work in steps, median / total of all runs | {c['median_steps_s']} / {c['total_steps_s']} s"
        f" (total work {c['total_work_s']} s) | |",
        f"| landed -> raw / clean / features (checked), median of {len(lat['files'])} |"
        f" {lat['median_s']['raw_events']} / {lat['median_s']['clean_events']} /"
        f" {lat['median_s']['features_checked']} s | features <= 15 s |",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout of the platform to run (default: this one)")
    parser.add_argument("--files", type=int, default=5, help="files landed one at a time for the latency")
    parser.add_argument("--quiet", type=float, default=35.0, help="seconds without a new run that mean settled")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up the catch-up after this long")
    parser.add_argument("--name", default="dev", help="results/<name>.json and .md")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    # A SIGTERM (or SIGINT, ignored by a job started in the background) still stops dagster dev.
    signal.signal(signal.SIGTERM, _exit)
    repo = args.repo.resolve()
    load_before = _loadavg()
    with tempfile.TemporaryDirectory(prefix="dev_bench_") as tmp:
        work = Path(tmp)
        generate_demo(repo, work / "data", days=7, events_per_day=2000, seed=7)
        days = sorted(p.name for p in (work / "data" / "landing" / "events").iterdir())
        with started_platform(repo, work) as (platform, started):
            print(f"dagster dev started; waiting for the demo week ({days[0]}..{days[-1]}) to settle", flush=True)
            caught = catch_up(platform, started, days, args.quiet, args.timeout)
            print(
                f"settled after {caught['settled_s']} s, {caught['runs']} runs "
                f"(median queued {caught['median_queued_s']} s, launch {caught['median_launch_s']} s, "
                f"work {caught['median_work_s']} s)",
                flush=True,
            )
            lat = latency(platform, args.files, quiet=10.0) if args.files else {"files": [], "median_s": {}}
    revision = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    result = {
        "name": args.name,
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, {_mem_gib()} GiB, {host.platform()}",
        "load_before": load_before,
        "load_after": _loadavg(),
        "repo": str(repo),
        "revision": revision,
        "settled_definition": (
            "raw_events, clean_events and user_daily_features materialized for every landing day, nothing "
            f"queued or running, and no run created for {args.quiet:.0f} s; settled_s = end of the last run "
            "minus the start of dagster dev"
        ),
        "catch_up": caught,
        "latency": lat,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{args.name}.md").write_text(_markdown(result))
    print(_markdown(result))
    return 0


def _exit(signum, frame) -> None:
    raise SystemExit(128 + signum)


def _mem_gib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024**2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
