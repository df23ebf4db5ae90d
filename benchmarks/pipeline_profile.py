"""Where the platform's step time goes: each step's work redone in-process, statement by statement.

    .venv/bin/python benchmarks/pipeline_profile.py [--work-dir /tmp/ml_platform_pipeline_bench] [--events N]

Run after `pipeline_bench.py` (it reuses the platform_warehouse contender's data folder and
warehouse: the tables in the warehouse file, `ML_PLATFORM_LAKE_TABLES=false`). On a copy of that
warehouse it repeats what the three event steps do, through the platform's own functions, with
every SQL statement on the warehouse connection timed: the raw write (each file
parsed on its scratch connection, then copied in), the clean write (`write_clean`) and its
contract check (`evaluate_contract`), the feature write and its check. What a step's Dagster
time holds beyond these (metadata, previews, the run's own bookkeeping) is the difference from
the step times in benchmarks/results/pipeline.json. Writes benchmarks/results/pipeline.profile.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent


class TimedConnection:
    """A DuckDB connection that adds each statement's time to a table of (phase, first words)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, times: dict[str, float]):
        self._con, self._times, self.phase = con, times, ""

    def execute(self, query: str, *args):
        words = " ".join(query.split()[:6])
        start = time.perf_counter()
        result = self._con.execute(query, *args)
        self._times[f"{self.phase}: {words}"] += time.perf_counter() - start
        return result

    def __getattr__(self, name):
        return getattr(self._con, name)


def profile(data_dir: Path, landing_days: tuple[dt.date, dt.date], event_days: tuple[dt.date, dt.date]) -> dict:
    import os

    os.environ["ML_PLATFORM_DATA_DIR"] = str(data_dir)
    os.environ["ML_PLATFORM_LAKE_TABLES"] = "false"
    from ml_platform.checks.contract import QuarantineFigures, evaluate_contract
    from ml_platform.clean.write import clean_table, write_clean
    from ml_platform.declarations.features.user_daily_features import TABLE
    from ml_platform.declarations.sources.events import SPEC
    from ml_platform.ingestion.files import reader
    from ml_platform.ingestion.files.landing import landed_files
    from ml_platform.partitions import window_keys
    from ml_platform.raw.table import create_raw_tables
    from ml_platform.warehouse import Warehouse
    from ml_platform.warehouse.resource import connect

    times: dict[str, float] = defaultdict(float)
    with tempfile.TemporaryDirectory() as tmp:
        # Raw: into an empty warehouse, every file of the landing window.
        empty = Path(tmp) / "raw.duckdb"
        con = TimedConnection(connect(empty), times)
        con.phase = "raw"
        create_raw_tables(con, SPEC)
        parse = {}
        for fmt, read in list(reader.READERS.items()):

            def timed(scratch, spec, file, *more, read=read, fmt=fmt):
                start = time.perf_counter()
                try:
                    return read(scratch, spec, file, *more)
                finally:
                    times[f"raw: parse {fmt} on scratch connection"] += time.perf_counter() - start

            parse[fmt] = timed
        saved = dict(reader.READERS)
        reader.READERS.update(parse)
        try:
            start = time.perf_counter()
            con.execute("BEGIN TRANSACTION")
            files = landed_files(data_dir / "landing", SPEC.landing_folder, SPEC.formats, landing_days)
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            for f in files:
                reader.ingest_file(con, SPEC, f, now)
            con.execute("COMMIT")
            times["raw: total"] = time.perf_counter() - start
        finally:
            reader.READERS.clear()
            reader.READERS.update(saved)
        con.close()

        # Clean and features: on a copy of the platform's warehouse (raw and users already in).
        copy = Path(tmp) / "warehouse.duckdb"
        shutil.copy(data_dir / "warehouse.duckdb", copy)
        con = TimedConnection(connect(copy), times)
        con.phase = "clean"
        start = time.perf_counter()
        con.execute("BEGIN TRANSACTION")
        acc = write_clean(con, SPEC, event_days)
        con.execute("COMMIT")
        times["clean: write total"] = time.perf_counter() - start
        con.phase = "features"
        start = time.perf_counter()
        con.execute("BEGIN TRANSACTION")
        TABLE.write(con, event_days)
        con.execute("COMMIT")
        times["features: write total"] = time.perf_counter() - start
        con.close()
        keys = window_keys(event_days)
        figures = QuarantineFigures(
            SPEC.quarantine_table,
            SPEC.max_quarantine_fraction,
            {p: acc.by_partition.get(p, {}).get("quarantined", 0) for p in keys},
            {p: acc.owned_by(p) for p in keys},
        )
        warehouse = Warehouse(database=str(copy))
        start = time.perf_counter()
        evaluate_contract(warehouse, clean_table(SPEC), event_days, keys, figures)
        times["clean: contract check"] = time.perf_counter() - start
        start = time.perf_counter()
        evaluate_contract(warehouse, TABLE.table, event_days, keys)
        times["features: contract check"] = time.perf_counter() - start
    return dict(sorted(times.items(), key=lambda kv: -kv[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/ml_platform_pipeline_bench"))
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "pipeline.profile.json")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    import pipeline_data

    inputs = [p for p in args.work_dir.glob("input-*") if (p / "input.json").exists()]
    meta = {}
    for p in inputs:
        info = json.loads((p / "input.json").read_text())
        if info["events"] == args.events and info["days"] > 1:
            meta = info
    if not meta:
        raise SystemExit(
            f"no benchmark input of {args.events:,} events under {args.work_dir}: run pipeline_bench first"
        )
    last = pipeline_data.END_DATE
    landing = (last - dt.timedelta(days=meta["days"] - 1), last)
    events = (landing[0] - dt.timedelta(days=3), last)
    # The statements are timed on the warehouse connection: the write path with the tables in the
    # warehouse file (the platform_warehouse contender's data folder). With lake tables, the default,
    # the same rows are written as files and committed to the catalog at COMMIT.
    data_dir = args.work_dir / "runs" / f"platform_warehouse-{args.events}" / "data"
    if not data_dir.exists():
        raise SystemExit(f"no platform_warehouse run under {args.work_dir}: run pipeline_bench with that contender")
    times = profile(data_dir, landing, events)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"events": args.events, "seconds": times}, indent=2) + "\n")
    for name, seconds in times.items():
        if seconds >= 0.05:
            print(f"{seconds:8.2f} s  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
