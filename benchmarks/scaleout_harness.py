"""The scale-out benchmarks' shared harness (`scaleout_options.py`, `table_formats.py`): the servers
(a PostgreSQL server and a local S3 server, both started here) with the landed CSV days on S3, one
partition's work as SQL, DuckDB connections that reach S3 and the extensions' wheels, passes of W
worker processes, and a table's order-independent digest.

A pass's worker is a module-level function taking one job (a tuple) and returning, per partition,
`(day, retries, seconds, started, ended, ...)` with wall-clock times; the pass's wall is from the
first partition's start to the last one's end, so process start and imports are left out.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import platform
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "benchmarks", ROOT / "platform_tests", ROOT / "platform"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from scaleout_data import HEADER, csv_day  # noqa: E402

from ml_platform.storage.aws import AwsAccess  # noqa: E402
from ml_platform.warehouse.extensions import load_offline, shipped_extension  # noqa: E402
from ml_platform.warehouse.s3 import attach_s3  # noqa: E402

COLUMNS = "day, event_id, user_id, event_type, event_time, amount, user_type_key, payload_bytes"
COLUMN_TYPES = (
    "day DATE, event_id VARCHAR, user_id VARCHAR, event_type VARCHAR, event_time TIMESTAMPTZ, amount DOUBLE, "
    "user_type_key VARCHAR, payload_bytes BIGINT"
)

# The partition's work: parse, type, derive (what a raw+clean step does to one day, in one query).
TRANSFORM = """
SELECT CAST(landing_day AS DATE) AS day, event_id, user_id, event_type,
       CAST(event_time AS TIMESTAMPTZ) AS event_time, TRY_CAST(amount AS DOUBLE) AS amount,
       md5(user_id || event_type) AS user_type_key, length(payload) AS payload_bytes
FROM read_csv({url}, all_varchar = true, header = true)
"""

# The extensions' wheels: (module, file name in the wheel, name DuckDB loads it by).
EXTENSIONS = {
    "postgres": ("duckdb_extension_postgres", "postgres", "postgres_scanner"),
    "ducklake": ("duckdb_extension_ducklake", "ducklake", None),
    "avro": ("duckdb_extension_avro", "avro", None),
    "iceberg": ("duckdb_extension_iceberg", "iceberg", None),
}


def day_string(day: int) -> str:
    return f"2026-10-{day:02d}"


def partition_select(bucket: str, day: int) -> str:
    """The SELECT that computes one day's rows from its landed CSV on S3."""
    url = f"'s3://{bucket}/landing/events/{day_string(day)}/events.csv'"
    return TRANSFORM.format(url=url).replace("landing_day", f"'{day_string(day)}'")


def s3_connection(env: dict, *extensions: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB (one thread, as each partition run has) reaching the local S3 server, with
    `extensions` loaded from their wheels."""
    con = duckdb.connect(config={"memory_limit": "1GB", "threads": "1"})
    attach_s3(con, AwsAccess(env["endpoint"], env["region"], None, None))
    for name in extensions:
        module, shipped, load_name = EXTENSIONS[name]
        load_offline(con, shipped_extension(module, shipped, load_name=load_name))
    return con


def digest(con: duckdb.DuckDBPyConnection, relation: str) -> tuple[int, int]:
    """Row count and an order-independent hash of every column of `relation`."""
    row = con.execute(f"SELECT count(*), sum(hash({COLUMNS})::HUGEINT) FROM {relation}").fetchone()
    return int(row[0]), int(row[1] or 0)


def shares(days: int, workers: int) -> list[list[int]]:
    """The days each of `workers` workers writes: round robin, so all run until near the end."""
    return [list(range(1 + w, days + 1, workers)) for w in range(workers)]


def run_pass(worker: Callable, jobs: list[tuple]) -> list[tuple]:
    """Run one job per worker process (fresh interpreters); every partition's record, flattened."""
    with mp.get_context("spawn").Pool(len(jobs)) as pool:
        return [record for share in pool.map(worker, jobs) for record in share]


def summary(done: list[tuple]) -> dict:
    return {
        "wall_s": round(max(d[4] for d in done) - min(d[3] for d in done), 2),
        "retries": sum(d[1] for d in done),
        "partition_s_median": round(sorted(d[2] for d in done)[len(done) // 2], 3),
    }


@contextlib.contextmanager
def servers(bucket: str, days: int, rows_per_day: int) -> Iterator[tuple[dict, object, object]]:
    """A PostgreSQL server and a local S3 server with `days` landed CSV days in `bucket`.

    Yields `(env, pg, s3)`: `env` is what a worker needs (picklable: the S3 endpoint and region, the
    libpq connection string and its parts), `pg` and `s3` the servers. The S3 credentials are put in
    this process's environment, which spawned workers inherit.
    """
    from postgres_server import postgres_server
    from s3_server import REGION, local_s3

    with postgres_server(db="lake", user="lake_writer") as pg, local_s3() as s3:
        for name, value in s3.env("").items():
            if name.startswith("AWS_"):
                os.environ[name] = value
        # libpq quoting (backslash-escaped quote) inside a SQL string literal (doubled quotes).
        password = pg.password.replace("\\", "\\\\").replace("'", "\\''")
        env = {
            "endpoint": s3.endpoint,
            "region": REGION,
            "pg": f"host={pg.host} port={pg.port} dbname={pg.db} user={pg.user} password=''{password}''",
            "pg_host": pg.host,
            "pg_port": pg.port,
            "pg_db": pg.db,
            "pg_user": pg.user,
            "pg_password": pg.password,
        }
        client = s3.client()
        client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        for day in range(1, days + 1):
            key = f"landing/events/{day_string(day)}/events.csv"
            client.put_object(Bucket=bucket, Key=key, Body=HEADER + csv_day(day, rows_per_day))
        yield env, pg, s3


def machine() -> dict:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "duckdb": duckdb.__version__}
