"""Scale-out options for parallel partition writes, measured side by side in one run (docs/scaling.md).

The platform's writes are partition replaces: a run rebuilds one day of a table (delete the day,
insert its new rows) in a transaction. This measures how each candidate storage behaves when
W worker processes (1, then 2) replace the 30 days of one table in parallel, on real servers: a
local S3-compatible server (moto, over HTTP) and a PostgreSQL server, both started here.

Every partition's work is the same for all options: read the day's landed CSV from S3 with
DuckDB (httpfs), type and derive its rows, write the day. The options:

- `duckdb_file`: today's embedded warehouse, one DuckDB file; a second process waits for the file
  lock (the platform's `connect` retries), so writers take turns.
- `ducklake_replace`: DuckLake (catalog in PostgreSQL, data as Parquet on S3), the day replaced
  with DELETE + INSERT in one transaction. DuckLake detects conflicts per table: a transaction that
  deleted from a table conflicts with any other that inserted into it since it began, so a
  conflicting commit is retried from the start (counted).
- `ducklake_append`: the same catalog, insert only (no replace): what DuckLake runs in parallel.
- `parquet_catalog`: one Parquet file per partition under a unique name on S3, then one catalog
  row per partition swapped in PostgreSQL (`INSERT ... ON CONFLICT DO UPDATE`): writers of
  different partitions never touch the same row.

Results: `benchmarks/results/scaleout_options.{json,md}`. Every option's table must hold the same
rows (count and an order-independent hash) as the single-worker `duckdb_file` run.

    .venv/bin/python benchmarks/scaleout_options.py [--days 30] [--rows-per-day 100000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import duckdb
from scaleout_harness import (
    COLUMN_TYPES,
    ROOT,
    digest,
    machine,
    partition_select,
    run_pass,
    s3_connection,
    servers,
    shares,
    summary,
)

from ml_platform.storage.aws import AwsAccess
from ml_platform.warehouse.s3 import attach_s3

BUCKET = "scaleout-bench"
OPTIONS = ("duckdb_file", "ducklake_replace", "ducklake_append", "parquet_catalog")
TABLE = "events_typed"
MAX_RETRIES = 200


def _connect(env: dict, option: str) -> duckdb.DuckDBPyConnection:
    if option.startswith("ducklake"):
        con = s3_connection(env, "postgres", "ducklake")
        con.execute(
            f"ATTACH 'ducklake:postgres:{env['pg']}' AS lake (DATA_PATH 's3://{BUCKET}/{option}/', METADATA_SCHEMA '{option}')"
        )
        con.execute("USE lake")
    elif option == "parquet_catalog":
        con = s3_connection(env, "postgres")
        con.execute(f"ATTACH '{env['pg']}' AS catalog (TYPE postgres)")
    else:
        con = s3_connection(env)
    return con


def _prepare(env: dict, option: str, workdir: Path) -> None:
    con = duckdb.connect(str(workdir / "warehouse.duckdb")) if option == "duckdb_file" else _connect(env, option)
    if option == "parquet_catalog":
        con.execute(
            "CALL postgres_execute('catalog', 'CREATE TABLE IF NOT EXISTS lake_partitions (table_name text, "
            "partition_key text, file_url text, row_count bigint, PRIMARY KEY (table_name, partition_key))')"
        )
    else:
        con.execute(f"CREATE TABLE {TABLE} ({COLUMN_TYPES})")
        if option.startswith("ducklake"):
            con.execute(f"ALTER TABLE {TABLE} SET PARTITIONED BY (day)")
    con.close()


def _write_partition(con, env: dict, option: str, day: int) -> int:
    """One partition's work and write; returns the retries its commit needed."""
    select = partition_select(BUCKET, day)
    if option == "parquet_catalog":
        target = f"s3://{BUCKET}/parquet_catalog/{TABLE}/day=2026-10-{day:02d}/{uuid.uuid4().hex}.parquet"
        con.execute(f"COPY ({select}) TO '{target}' (FORMAT parquet)")
        con.execute(
            "CALL postgres_execute('catalog', $$INSERT INTO lake_partitions VALUES "
            f"('{TABLE}', '2026-10-{day:02d}', '{target}', 0) ON CONFLICT (table_name, partition_key) "
            "DO UPDATE SET file_url = EXCLUDED.file_url$$)"
        )
        return 0
    for attempt in range(MAX_RETRIES):
        try:
            con.execute("BEGIN")
            if option != "ducklake_append":
                con.execute(f"DELETE FROM {TABLE} WHERE day = DATE '2026-10-{day:02d}'")
            con.execute(f"INSERT INTO {TABLE} {select}")
            con.execute("COMMIT")
            return attempt
        except duckdb.TransactionException:
            # A failed COMMIT has already ended the transaction; a failed statement has not.
            with contextlib.suppress(duckdb.TransactionException):
                con.execute("ROLLBACK")
    raise RuntimeError(f"day {day}: still conflicting after {MAX_RETRIES} attempts")


def _worker(args) -> list[tuple[int, int, float, float, float]]:
    """(day, retries, seconds, started, ended) per partition; wall-clock times, so the run's wall is
    from the first partition's start to the last one's end (process start and imports left out)."""
    env, option, workdir, days = args
    if option == "duckdb_file":
        from ml_platform.warehouse.resource import connect

        done = []
        for day in days:
            started = time.time()
            # The platform's connect: waits (with backoff) while another process holds the file.
            con = connect(Path(workdir) / "warehouse.duckdb")
            attach_s3(con, AwsAccess(env["endpoint"], env["region"], None, None))
            retries = _write_partition(con, env, option, day)
            con.close()
            ended = time.time()
            done.append((day, retries, ended - started, started, ended))
        return done
    con = _connect(env, option)
    done = []
    for day in days:
        started = time.time()
        retries = _write_partition(con, env, option, day)
        ended = time.time()
        done.append((day, retries, ended - started, started, ended))
    con.close()
    return done


def _digest(env: dict, option: str, workdir: Path) -> tuple[int, int]:
    if option == "duckdb_file":
        con = duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True)
        relation = TABLE
    else:
        con = _connect(env, option)
        relation = TABLE
        if option == "parquet_catalog":
            files = [r[0] for r in con.execute("SELECT file_url FROM catalog.lake_partitions").fetchall()]
            relation = f"read_parquet({files!r}, hive_partitioning = true)"
    result = digest(con, relation)
    con.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rows-per-day", type=int, default=100_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    results: dict = {"days": args.days, "rows_per_day": args.rows_per_day, "machine": machine(), "runs": {}}
    with servers(BUCKET, args.days, args.rows_per_day) as (env, pg, _s3), tempfile.TemporaryDirectory() as tmp:
        for option in OPTIONS:
            for workers in args.workers:
                workdir = Path(tmp) / f"{option}-{workers}"
                workdir.mkdir()
                if option != "duckdb_file":
                    pg.sql(f"DROP SCHEMA IF EXISTS {option} CASCADE; DROP TABLE IF EXISTS lake_partitions;")
                _prepare(env, option, workdir)
                # The first backfill fills an empty table; the second replaces every partition, as a
                # re-run (a fix, late data, a new contract) does. An append-only table is only filled.
                passes = {}
                for name in ("first", "again") if option != "ducklake_append" else ("first",):
                    jobs = [(env, option, str(workdir), share) for share in shares(args.days, workers)]
                    passes[name] = summary(run_pass(_worker, jobs))
                rows, table_digest = _digest(env, option, workdir)
                results["runs"][f"{option}/{workers}"] = {
                    "option": option,
                    "workers": workers,
                    **passes["first"],
                    "again": passes.get("again"),
                    "rows": rows,
                    "digest": str(table_digest),
                }
                print(json.dumps(results["runs"][f"{option}/{workers}"]), flush=True)
    reference = results["runs"][f"duckdb_file/{args.workers[0]}"]
    for run in results["runs"].values():
        run["equal_to_embedded"] = (run["rows"], run["digest"]) == (reference["rows"], reference["digest"])
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "scaleout_options.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out_dir / "scaleout_options.md").write_text(_report(results, args.workers))
    print(_report(results, args.workers))
    return 0 if all(r["equal_to_embedded"] for r in results["runs"].values()) else 1


def _report(results: dict, workers: list[int]) -> str:
    lines = [
        "# Parallel partition writes: storage options",
        "",
        f"{results['days']} partitions of {results['rows_per_day']:,} rows each, replaced by W worker processes; "
        f"{results['machine']['cpus']} cores, DuckDB {results['machine']['duckdb']}. "
        "Local S3 server and PostgreSQL on this machine (benchmarks/scaleout_options.py).",
        "",
        "Wall: first partition's start to last one's end. *Fill*: the table empty; *replace*: every",
        "partition rebuilt over the filled table (a re-run). Retries: commits that conflicted and were redone.",
        "",
        "| option | pass | "
        + " | ".join(f"W={w} wall" for w in workers)
        + " | speedup | retries (W=max) | same rows as embedded |",
        "|---|---|" + "---:|" * len(workers) + "---:|---:|---|",
    ]
    for option in OPTIONS:
        runs = [results["runs"][f"{option}/{w}"] for w in workers]
        equal = "yes" if all(r["equal_to_embedded"] for r in runs) else "NO"
        for label, passes in (("fill", runs), ("replace", [r["again"] for r in runs])):
            if None in passes:
                continue
            speedup = passes[0]["wall_s"] / passes[-1]["wall_s"]
            cells = " | ".join(f"{p['wall_s']:.1f} s" for p in passes)
            lines.append(f"| `{option}` | {label} | {cells} | {speedup:.2f}× | {passes[-1]['retries']} | {equal} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
