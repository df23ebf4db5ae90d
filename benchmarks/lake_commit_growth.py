"""What a commit costs as a lake table's snapshots grow: one small file appended per commit, as a
stream's micro-batch does, with the snapshots a table keeps bounded (`ML_PLATFORM_LAKE_MAX_SNAPSHOTS`,
the default) and unbounded (the limit set above the commits made).

    .venv/bin/python benchmarks/lake_commit_growth.py [--commits 750] [--every 250]

Each mode in a fresh process with a fresh data folder (the embedded catalog, local files); per
`--every` commits: the median time of one write and commit (`tables.write_partition_files`, then
`replace.replace_together`) over the last ones, the snapshots kept and the metadata file's size.
Writes benchmarks/results/lake_commit_growth.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DAY = dt.date(2026, 11, 1)


def measure(commits: int, every: int) -> list[dict]:
    """In this process (its environment chosen by the caller): the figures per `every` commits."""
    sys.path.insert(0, str(HERE.parent / "platform"))
    from ml_platform.lakehouse import replace, tables
    from ml_platform.lakehouse.working_copy import run_database

    figures, times = [], []
    with run_database("growth") as con:
        for i in range(commits):
            start = time.perf_counter()
            select = f"(SELECT DATE '{DAY}' AS day, {i} AS batch, range AS v FROM range(50))"
            _, written = tables.write_partition_files(con, "growth", select, "day", f"b{i}")
            files = [file for day_files in written.values() for file in day_files]
            replace.replace_together([replace.Replacement("growth", [], files)], f"r{i}")
            times.append(time.perf_counter() - start)
            if (i + 1) % every == 0:
                table = tables.load_table("growth")
                figures.append(
                    {
                        "commits": i + 1,
                        "median_commit_ms": round(statistics.median(times[-every:]) * 1000, 1),
                        "snapshots_kept": len(table.snapshots()),
                        "metadata_kib": round(os.path.getsize(table.metadata_location.removeprefix("file://")) / 1024),
                    }
                )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=750)
    parser.add_argument("--every", type=int, default=250)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.commits, args.every)))
        return
    results = {}
    for mode, limit in (("bounded", None), ("unbounded", str(args.commits + 1))):
        with tempfile.TemporaryDirectory() as data:
            env = {k: v for k, v in os.environ.items() if not k.startswith("ML_PLATFORM_")}
            env["ML_PLATFORM_DATA_DIR"] = data
            if limit:
                env["ML_PLATFORM_LAKE_MAX_SNAPSHOTS"] = limit
            command = [
                sys.executable,
                __file__,
                "--measure",
                "--commits",
                str(args.commits),
                "--every",
                str(args.every),
            ]
            out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
            results[mode] = json.loads(out.strip().splitlines()[-1])
            print(mode, results[mode], flush=True)
    out_dir = HERE / "results"
    (out_dir / "lake_commit_growth.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Lake commit cost as snapshots grow (`benchmarks/lake_commit_growth.py`)",
        "",
        "One 50-row file appended per commit to one day of one table (embedded catalog, local files).",
        "",
        "| commits | bounded: median commit ms | snapshots kept | metadata KiB | unbounded: median commit ms | snapshots kept | metadata KiB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for bounded, unbounded in zip(results["bounded"], results["unbounded"], strict=True):
        lines.append(
            f"| {bounded['commits']} | {bounded['median_commit_ms']} | {bounded['snapshots_kept']} |"
            f" {bounded['metadata_kib']} | {unbounded['median_commit_ms']} | {unbounded['snapshots_kept']} |"
            f" {unbounded['metadata_kib']} |"
        )
    (out_dir / "lake_commit_growth.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
