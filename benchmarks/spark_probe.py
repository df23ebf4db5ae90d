"""Spark, the third scale-out option of docs/scaling.md, measured on the same partition work as
`scaleout_options.py`: 30 days of CSV, each read, typed and derived, written as one Parquet
partition, with Spark's local mode on 1 and 2 cores (`local[1]`, `local[2]`), against DuckDB doing
the same on the same files in one process. Runs in its own venv (`make bench-spark`: pyspark is
large and needs Java 17+, neither of which the platform needs).

It also records whether Spark can read S3 here: pyspark's wheel ships no S3 connector
(`hadoop-aws`), which Spark fetches from Maven at run time, and no machine here reaches Maven.

    .venv-spark/bin/python benchmarks/spark_probe.py [--days 30] [--rows-per-day 100000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from scaleout_data import HEADER, csv_day  # noqa: E402

DERIVE_SQL = """
SELECT CAST(landing_day AS DATE) AS day, event_id, user_id, event_type,
       CAST(event_time AS TIMESTAMP) AS event_time, CAST(amount AS DOUBLE) AS amount,
       md5(concat(user_id, event_type)) AS user_type_key, length(payload) AS payload_bytes
FROM {source}
"""


def _spark(cores: int):
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master(f"local[{cores}]")
        .appName("scaleout-probe")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(cores))
        .getOrCreate()
    )


def _spark_run(landing: Path, out: Path, days: int, cores: int) -> dict:
    started = time.perf_counter()
    spark = _spark(cores)
    session_s = time.perf_counter() - started
    work_started = time.perf_counter()
    frame = spark.read.option("header", True).csv(str(landing / "*" / "events.csv"))
    frame.createOrReplaceTempView("landed")
    derived = spark.sql(DERIVE_SQL.format(source="landed"))
    derived.write.mode("overwrite").partitionBy("day").parquet(str(out))
    work_s = time.perf_counter() - work_started
    s3 = "not tried"
    try:
        spark.read.csv("s3a://bucket/landing/events.csv").count()
    except Exception as exc:  # the connector's class is missing: the message says which
        s3 = next((line for line in str(exc).splitlines() if "ClassNotFound" in line or "S3A" in line), str(exc))[:200]
    spark.stop()
    rows = duckdb.sql(f"SELECT count(*) FROM read_parquet('{out}/*/*.parquet')").fetchone()[0]
    return {"cores": cores, "session_start_s": round(session_s, 2), "work_s": round(work_s, 2), "rows": rows, "s3a": s3}


def _duckdb_run(landing: Path, out: Path, threads: int) -> dict:
    started = time.perf_counter()
    con = duckdb.connect(config={"threads": threads})
    source = f"read_csv('{landing}/*/events.csv', all_varchar = true, header = true)"
    select = DERIVE_SQL.format(source=source).replace("concat(user_id, event_type)", "user_id || event_type")
    con.execute(f"COPY ({select}) TO '{out}' (FORMAT parquet, PARTITION_BY (day))")
    work_s = time.perf_counter() - started
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}/*/*.parquet')").fetchone()[0]
    return {"threads": threads, "work_s": round(work_s, 2), "rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rows-per-day", type=int, default=100_000)
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    results: dict = {"days": args.days, "rows_per_day": args.rows_per_day, "spark": [], "duckdb": []}
    with tempfile.TemporaryDirectory(prefix="spark-probe-") as tmp:
        landing = Path(tmp) / "landing"
        for day in range(1, args.days + 1):
            folder = landing / f"2026-10-{day:02d}"
            folder.mkdir(parents=True)
            (folder / "events.csv").write_bytes(HEADER + csv_day(day, args.rows_per_day))
        for cores in (1, 2):
            out = Path(tmp) / f"spark-{cores}"
            results["spark"].append(_spark_run(landing, out, args.days, cores))
            print(json.dumps(results["spark"][-1]), flush=True)
            shutil.rmtree(out, ignore_errors=True)
        for threads in (1, 2):
            out = Path(tmp) / f"duckdb-{threads}"
            results["duckdb"].append(_duckdb_run(landing, out, threads))
            print(json.dumps(results["duckdb"][-1]), flush=True)
    expected = args.days * args.rows_per_day
    ok = all(r["rows"] == expected for r in results["spark"] + results["duckdb"])
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "spark_probe.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
