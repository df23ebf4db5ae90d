"""Benchmark: does a landing-sensor tick, and a raw run of one day, cost the same with 50 k files of
landing history as with 50?

    .venv/bin/python benchmarks/history_bench.py [--days 365] [--files-per-day 137] [--repeat 7]

Two landing trees are generated for the `events` file source: `small` holds only the measured day
(the newest landing day, yesterday UTC) with `--day-files` (50) files; `large` holds the same day
plus `--days - 1` older daily folders of `--files-per-day` files (about 50 k files in all). Both use
the same partitions (starting `--days` ago), so only the landing history differs. The history is
written, then the measured day after a pause longer than the sensor's clock-skew window, as when
history landed long ago.

Measured per tree, median of `--repeat` repetitions:
- `tick`: one landing-sensor evaluation (`build_sensor_context` + `evaluate_tick`, as the daemon
  does) with the cursor of the previous tick, after one new file landed in the measured day; it must
  request exactly that day, with one file. The first tick (no cursor: everything is new) is
  reported apart, once.
- `listing`: what a raw run of the measured day reads of the landing folder (`landed_files`,
  `unsupported_files`, `refused_files`), as the raw asset calls them.
- `raw_run`: the raw asset of the measured day materialized in process (`dg.materialize`), listing,
  reading the day's files and writing the warehouse included (`--raw-repeat`, 3).

The ratio large/small of each is the figure of merit (target about 1). `--label` names the code
measured (e.g. `before`/`after` a change); results are merged by label into
benchmarks/results/history.json and the table benchmarks/results/history.md is rewritten from it.
Run the code before a change by putting its `platform/` first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SOURCE = "events"
HEADER = "event_id,user_id,event_type,event_time,product_id,amount\n"
# Longer than the sensor's clock-skew window (2 s): the history is older than the measured day.
SETTLE_SECONDS = 3.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365, help="daily folders of the large history")
    parser.add_argument("--files-per-day", type=int, default=137, help="files in each older folder")
    parser.add_argument("--day-files", type=int, default=50, help="files in the measured day")
    parser.add_argument("--repeat", type=int, default=7, help="repetitions of tick and listing")
    parser.add_argument("--raw-repeat", type=int, default=3, help="repetitions of the raw run")
    parser.add_argument("--label", default="current", help="name of the code measured (before/after)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave results/ alone")
    return parser.parse_args(argv)


def _write(folder: Path, name: str, day: dt.date, n: int) -> None:
    path = folder / name
    path.write_text(HEADER + f"{day:%Y%m%d}-{n},u{n % 97},page_view,{day}T10:00:00Z,,\n")
    noon = dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC).timestamp()
    os.utime(path, (noon, noon))


def build_landing(root: Path, day: dt.date, args: argparse.Namespace, large: bool) -> int:
    """The landing tree of one history; returns its file count."""
    source = root / "landing" / SOURCE
    count = 0
    if large:
        for back in range(args.days - 1, 0, -1):
            older = day - dt.timedelta(days=back)
            folder = source / older.isoformat()
            folder.mkdir(parents=True)
            for n in range(args.files_per_day):
                _write(folder, f"part-{n:04d}.csv", older, n)
            count += args.files_per_day
        time.sleep(SETTLE_SECONDS)
    folder = source / day.isoformat()
    folder.mkdir(parents=True)
    for n in range(args.day_files):
        _write(folder, f"part-{n:04d}.csv", day, n)
    return count + args.day_files


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def measure(history: str, args: argparse.Namespace, day: dt.date) -> dict:
    import dagster as dg

    from ml_platform.definitions import build_definitions
    from ml_platform.ingestion.files import landing

    with tempfile.TemporaryDirectory(prefix=f"history-{history}-") as tmp, dg.instance_for_test() as instance:
        data = Path(tmp) / "data"
        os.environ["ML_PLATFORM_DATA_DIR"] = str(data)
        os.environ["ML_PLATFORM_START_DATE"] = (day - dt.timedelta(days=args.days - 1)).isoformat()
        os.environ.pop("ML_PLATFORM_WAREHOUSE", None)
        build_s = time.perf_counter()
        files = build_landing(data, day, args, large=history == "large")
        build_s = time.perf_counter() - build_s
        defs = build_definitions()
        sensor = defs.resolve_sensor_def(f"{SOURCE}_landing_sensor")
        spec_formats = ("csv",)
        root = data / "landing"

        def tick(cursor):
            context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
            return sensor.evaluate_tick(context)

        first_s, first = _timed(lambda: tick(None))
        assert len(first.run_requests) == (args.days if history == "large" else 1), len(first.run_requests)
        cursor = first.cursor
        ticks = []
        for rep in range(args.repeat):
            _write(root / SOURCE / day.isoformat(), f"new-{rep:03d}.csv", day, 10_000 + rep)
            seconds, result = _timed(lambda cursor=cursor: tick(cursor))
            [request] = result.run_requests
            assert request.partition_key == day.isoformat() and request.tags["ml_platform/files"] == "1", request
            cursor = result.cursor
            ticks.append(seconds)
        quiet = []
        for _ in range(args.repeat):
            seconds, result = _timed(lambda cursor=cursor: tick(cursor))
            assert not result.run_requests
            quiet.append(seconds)

        window = (day, day)
        listings = []
        for _ in range(args.repeat):
            seconds, landed = _timed(
                lambda: (
                    landing.landed_files(root, SOURCE, spec_formats, window),
                    _windowed(landing.unsupported_files, root, spec_formats, window),
                    _windowed(landing.refused_files, root, None, window),
                )
            )
            assert len(landed[0]) == args.day_files + args.repeat
            listings.append(seconds)

        raw = defs.get_assets_def("raw_events")
        raw_runs = []
        for _ in range(args.raw_repeat):
            seconds, result = _timed(
                lambda: dg.materialize(
                    [raw], instance=instance, resources=defs.resources, partition_key=day.isoformat()
                )
            )
            assert result.success
            raw_runs.append(seconds)
        return {
            "files": files,
            "date_folders": args.days if history == "large" else 1,
            "build_s": round(build_s, 2),
            "first_tick_s": round(first_s, 4),
            "first_cursor_bytes": len(first.cursor or ""),
            "cursor_bytes": len(cursor or ""),
            "tick_s": _summary(ticks),
            "quiet_tick_s": _summary(quiet),
            "listing_s": _summary(listings),
            "raw_run_s": _summary(raw_runs),
        }


def _windowed(fn, root, formats, window):
    """Call a listing function with the run's window when it takes one (the code before the change
    listed the whole source folder)."""
    args = (root, SOURCE) if formats is None else (root, SOURCE, formats)
    if "dates" in inspect.signature(fn).parameters:
        return fn(*args, dates=window)
    return fn(*args)


def _summary(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 5), "all": [round(v, 5) for v in values]}


def report(results: dict) -> str:
    lines = [
        "# Landing history: cost of a sensor tick and a raw run of one day",
        "",
        "Medians in seconds; `small` = the measured day alone (50 files), `large` = the same day plus a"
        " year of daily folders (about 50 k files). Ratio = large / small (target about 1).",
        "",
        "| code | measure | small | large | ratio |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for label, run in results.items():
        small, large = run["small"], run["large"]
        for name, key in [
            ("tick, one new file", "tick_s"),
            ("tick, nothing new", "quiet_tick_s"),
            ("raw run listing (1 day)", "listing_s"),
            ("raw run, in process (1 day)", "raw_run_s"),
        ]:
            s, g = small[key]["median"], large[key]["median"]
            lines.append(f"| {label} | {name} | {s:.4f} | {g:.4f} | {g / s:.2f}x |")
        lines.append(
            f"| {label} | first tick (no cursor) s; cursor bytes after the last tick | {small['first_tick_s']:.3f}, "
            f"{small['cursor_bytes']} | {large['first_tick_s']:.3f}, {large['cursor_bytes']} | |"
        )
    run = next(iter(results.values()))
    lines += [
        "",
        f"Files: small {run['small']['files']}, large {run['large']['files']} in {run['large']['date_folders']}"
        " daily folders.",
        "",
    ]
    for label, run in results.items():
        lines.append(f"- `{label}`: {run['machine']}, load average {run['loadavg']} at start, {run['when']}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    loadavg = Path("/proc/loadavg").read_text().split()[0]
    run = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "loadavg": loadavg,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "args": vars(args),
    }
    for history in ("small", "large"):
        run[history] = measure(history, args, day)
        print(history, json.dumps(run[history]), flush=True)
    for key in ("tick_s", "quiet_tick_s", "listing_s", "raw_run_s"):
        run.setdefault("ratio_large_over_small", {})[key] = round(
            run["large"][key]["median"] / run["small"][key]["median"], 2
        )
    print("ratios", run["ratio_large_over_small"])
    if args.no_write:
        return 0
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "history.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results[args.label] = run
    path.write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "history.md").write_text(report(results))
    print((RESULTS / "history.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
