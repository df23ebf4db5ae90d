"""Open table formats for partition replaces from workers that share no disk, measured side by side
(docs/scaling.md, section 2): DuckLake and Apache Iceberg, each with its catalog in PostgreSQL and its
data as Parquet on a local S3 server (both servers started here, by `scaleout_harness.py`).

Every partition's work is `scaleout_options.py`'s: read one landed CSV day from S3 with DuckDB, type
and derive its rows. W worker processes (1, 2, 4) fill 30 day-partitions of one table, then replace
every one again (a re-run). The variants, all partition replaces that are atomic (readers see the
old day or the new one) and retried a bounded number of times when the commit conflicts (counted):

- `ducklake_sql`: `BEGIN; DELETE day; INSERT ... SELECT; COMMIT` on a DuckLake table partitioned by
  day. DuckLake writes the day's Parquet inside the transaction; a conflicting commit fails whole
  (DuckLake deletes what it wrote), so a retry reads and writes the day again.
- `ducklake_files`: the day's Parquet written first (DuckDB `COPY` to a new name under the table's
  data path), then one short transaction: `DELETE` the day (whole files are dropped, metadata only)
  and `CALL ducklake_add_data_files(...)`. A conflict redoes only that transaction, with the same file.
- `iceberg_files`: the same file written the same way under the Iceberg table's location, then one
  pyiceberg transaction (SQL catalog on PostgreSQL): `delete(day == d)` (whole files dropped) and
  `add_files([file])`. pyiceberg 0.12 redoes a conflicting commit itself (`commit.retry.*` table
  properties, defaults kept): it reloads the table, rebuilds the manifests over the new head with the
  same data files and checks the commits in between for a real conflict. When it gives up
  (`CommitFailedException`) or finds one (`ValidationException`: files of the same day added
  meanwhile), the transaction is redone here over the new head, with the same file.
- `iceberg_pyarrow`: pyiceberg writes the day itself (`dynamic_partition_overwrite` of the Arrow table
  DuckDB computed), in the same transaction; redone here, it writes the day's data again.

Each table must hold the same rows (count and order-independent hash) as the days computed directly
from the CSVs, read by the writer's own library and by a second engine in a fresh process (DuckLake:
DuckDB attaching the catalog read-only; Iceberg: DuckDB's iceberg extension from its wheel reading
the table's metadata file, besides pyiceberg's scan). Then, on the last table of each variant: a
worker SIGKILLed between writing its files and committing (the table must stay as it was, and a
re-run of the day must give the same table), and snapshot retention (expire old snapshots, delete
files nothing references; the table must stay readable). A SQLite catalog is probed once.

Results: `benchmarks/results/table_formats.{json,md}`; exits 1 when a check fails.

    .venv/bin/python benchmarks/table_formats.py [--days 30] [--rows-per-day 100000] [--workers 1 2 4]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import multiprocessing as mp
import os
import random
import signal
import sys
import tempfile
import time
import uuid
import warnings
from datetime import UTC, datetime
from pathlib import Path

import duckdb
from scaleout_harness import (
    COLUMN_TYPES,
    ROOT,
    day_string,
    digest,
    machine,
    partition_select,
    run_pass,
    s3_connection,
    servers,
    shares,
    summary,
)

BUCKET = "table-formats-bench"
FORMATS = ("ducklake_sql", "ducklake_files", "iceberg_files", "iceberg_pyarrow")
TABLE = "events_typed"
NAMESPACE = "bench"
MAX_ATTEMPTS = 50


def _iceberg_catalog(env: dict, name: str = "bench"):
    """pyiceberg's SQL catalog on the PostgreSQL server (psycopg2), with its FileIO on the local S3."""
    from urllib.parse import quote

    from pyiceberg.catalog.sql import SqlCatalog

    uri = (
        f"postgresql+psycopg2://{quote(env['pg_user'], safe='')}:{quote(env['pg_password'], safe='')}"
        f"@{env['pg_host']}:{env['pg_port']}/{env['pg_db']}"
    )
    return SqlCatalog(
        name,
        uri=uri,
        warehouse=f"s3://{BUCKET}/iceberg",
        **{
            "py-io-impl": "pyiceberg.io.pyarrow.PyArrowFileIO",
            "s3.endpoint": env["endpoint"],
            "s3.region": env["region"],
            "s3.access-key-id": os.environ["AWS_ACCESS_KEY_ID"],
            "s3.secret-access-key": os.environ["AWS_SECRET_ACCESS_KEY"],
        },
    )


def _iceberg_schema():
    from pyiceberg.schema import Schema
    from pyiceberg.types import DateType, DoubleType, LongType, NestedField, StringType, TimestamptzType

    fields = [
        ("day", DateType()),
        ("event_id", StringType()),
        ("user_id", StringType()),
        ("event_type", StringType()),
        ("event_time", TimestamptzType()),
        ("amount", DoubleType()),
        ("user_type_key", StringType()),
        ("payload_bytes", LongType()),
    ]
    return Schema(*[NestedField(i + 1, name, kind, required=False) for i, (name, kind) in enumerate(fields)])


def _ducklake_attach(con: duckdb.DuckDBPyConnection, env: dict, table: str, read_only: bool = False) -> None:
    options = f"METADATA_SCHEMA '{table}'" + (", READ_ONLY" if read_only else f", DATA_PATH 's3://{BUCKET}/{table}/'")
    con.execute(f"ATTACH 'ducklake:postgres:{env['pg']}' AS lake ({options})")
    con.execute("USE lake")


class Writer:
    """One worker's connection to one table, and the two steps of a partition replace: `write` (the
    data files, outside any commit) and `commit` (redone on conflict, a bounded number of times)."""

    def __init__(self, env: dict, fmt: str, table: str):
        self.env, self.fmt, self.table = env, fmt, table
        warnings.filterwarnings("ignore", message="Delete operation did not match any records")
        if fmt.startswith("ducklake"):
            self.con = s3_connection(env, "postgres", "ducklake")
            _ducklake_attach(self.con, env, table)
        else:
            self.con = s3_connection(env)
            # Arrow timestamps in UTC, as the Iceberg column (timestamptz) stores them.
            self.con.execute("SET TimeZone = 'UTC'")
            self.catalog = _iceberg_catalog(env)
            self.identifier = f"{NAMESPACE}.{table}"
            self.pyiceberg_retries = _PyicebergRetries()
            self.location = self.catalog.load_table(self.identifier).location()

    def write(self, day: int):
        select = partition_select(BUCKET, day)
        if self.fmt == "ducklake_sql":
            return select  # DuckLake writes the files itself, inside the transaction
        if self.fmt == "iceberg_pyarrow":
            return self.con.execute(select).fetch_arrow_table()  # pyiceberg writes it inside its commit
        base = f"s3://{BUCKET}/{self.table}/main/{TABLE}" if self.fmt == "ducklake_files" else f"{self.location}/data"
        url = f"{base}/day={day_string(day)}/{uuid.uuid4().hex}.parquet"
        self.con.execute(f"COPY ({select}) TO '{url}' (FORMAT parquet)")
        return url

    def commit(self, day: int, written, barrier=None) -> tuple[int, int]:
        """Commit the day (retried); (commits redone, of which writing the day's data again).
        `barrier`: wait there, the commit staged, before the first attempt commits (the race check)."""
        if self.fmt.startswith("ducklake"):
            redone = _retried(
                lambda first: self._ducklake_commit(day, written, first and barrier), (duckdb.TransactionException,)
            )
            return redone, redone if self.fmt == "ducklake_sql" else 0
        from pyiceberg.exceptions import CommitFailedException, ValidationException

        self.pyiceberg_retries.count = 0
        # pyiceberg gives up (after its own retries), or finds a real conflict (the day's files
        # changed meanwhile: ValidationException): the whole transaction is redone over the new head.
        redone = _retried(
            lambda first: self._iceberg_commit(day, written, first and barrier),
            (CommitFailedException, ValidationException),
        )
        # pyiceberg's own retries rebuild the manifests over the new head and keep the data files;
        # redoing dynamic_partition_overwrite writes the day's data again.
        return redone + self.pyiceberg_retries.count, redone if self.fmt == "iceberg_pyarrow" else 0

    def _ducklake_commit(self, day: int, written: str, barrier) -> None:
        try:
            self.con.execute("BEGIN")
            self.con.execute(f"DELETE FROM {TABLE} WHERE day = DATE '{day_string(day)}'")
            if self.fmt == "ducklake_sql":
                self.con.execute(f"INSERT INTO {TABLE} {written}")
            else:
                self.con.execute(f"CALL ducklake_add_data_files('lake', '{TABLE}', '{written}')")
            if barrier:
                barrier.wait()
            self.con.execute("COMMIT")
        except duckdb.TransactionException:
            # A failed COMMIT has already ended the transaction; a failed statement has not.
            with contextlib.suppress(duckdb.TransactionException):
                self.con.execute("ROLLBACK")
            raise

    def _iceberg_commit(self, day: int, written, barrier) -> None:
        from pyiceberg.expressions import EqualTo

        table = self.catalog.load_table(self.identifier)  # the latest metadata: a redo starts from it
        with table.transaction() as tx:
            if self.fmt == "iceberg_pyarrow":
                tx.dynamic_partition_overwrite(written)
            else:
                tx.delete(EqualTo("day", day_string(day)))
                # The file's name is new (a uuid): the check for files already in the table is not needed.
                tx.add_files([written], check_duplicate_files=False)
            if barrier:
                barrier.wait()

    def close(self) -> None:
        self.con.close()


class _PyicebergRetries(logging.Handler):
    """Counts the commits pyiceberg redid itself (it logs each one; nothing else tells)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.count = 0
        logger = logging.getLogger("pyiceberg.table")
        logger.addHandler(self)
        logger.propagate = False

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Commit failed due to a concurrent update, retrying"):
            self.count += 1


def _retried(attempt, conflict: tuple[type[Exception], ...]) -> int:
    """Run `attempt(first)` until it commits; the number of conflicting commits redone. The wait
    between attempts grows, randomized so that workers which conflicted do not meet again at once."""
    for redone in range(MAX_ATTEMPTS):
        try:
            attempt(redone == 0)
            return redone
        except conflict:
            time.sleep(random.uniform(0, 0.01 * 2 ** min(redone, 5)))
    raise RuntimeError(f"still conflicting after {MAX_ATTEMPTS} attempts")


def _worker(job) -> list[tuple]:
    """(day, redone, seconds, started, ended, write_s, commit_s, data_rewrites) per partition."""
    env, fmt, table, days = job
    writer = Writer(env, fmt, table)
    done = []
    for day in days:
        started = time.time()
        written = writer.write(day)
        written_at = time.time()
        redone, rewrites = writer.commit(day, written)
        ended = time.time()
        done.append((day, redone, ended - started, started, ended, written_at - started, ended - written_at, rewrites))
    writer.close()
    return done


def _racer(job) -> tuple[int, int]:
    """One of two runs of the same day that stage their commits, meet at the barrier, then commit."""
    env, fmt, table, day, barrier = job
    writer = Writer(env, fmt, table)
    result = writer.commit(day, writer.write(day), barrier)
    writer.close()
    return result


def _same_day_race(
    env: dict, pg, fmt: str, day: int, rows_per_day: int, reference_day: tuple[int, int], iceberg_properties: dict
) -> dict:
    """Two runs of the same day commit at the same moment, on an empty day (a first fill) and on a
    filled one (a re-run): the day must hold one run's rows, not both (exactly once)."""
    table = f"{fmt}_race"
    _prepare(env, pg, fmt, table, iceberg_properties)
    context = mp.get_context("spawn")
    outcome = {}
    for case in ("empty_day", "filled_day"):
        with context.Manager() as manager, context.Pool(2) as pool:
            commits = pool.map(_racer, [(env, fmt, table, day, manager.Barrier(2))] * 2)
        rows, table_digest = _read_own(env, fmt, table)
        outcome[case] = {
            "rows": rows,
            "expected_rows": rows_per_day,
            "redone": sum(c[0] for c in commits),
            "exactly_once": (rows, table_digest) == reference_day,
        }
    return outcome


def _prepare(env: dict, pg, fmt: str, table: str, iceberg_properties: dict) -> None:
    if fmt.startswith("ducklake"):
        pg.sql(f"DROP SCHEMA IF EXISTS {table} CASCADE;")
        con = s3_connection(env, "postgres", "ducklake")
        _ducklake_attach(con, env, table)
        con.execute(f"CREATE TABLE {TABLE} ({COLUMN_TYPES})")
        con.execute(f"ALTER TABLE {TABLE} SET PARTITIONED BY (day)")
        con.close()
        return
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.transforms import IdentityTransform

    catalog = _iceberg_catalog(env)
    catalog.create_namespace_if_not_exists(NAMESPACE)
    schema = _iceberg_schema()
    spec = PartitionSpec(PartitionField(source_id=1, field_id=1000, transform=IdentityTransform(), name="day"))
    created = catalog.create_table(
        f"{NAMESPACE}.{table}",
        schema=schema,
        partition_spec=spec,
        location=f"s3://{BUCKET}/{_table_prefix(fmt, table)}",
        properties=iceberg_properties,
    )
    # DuckDB writes Parquet without Iceberg field ids: readers map its columns by name. add_files
    # would set this on its first commit; set once here, not raced by the first workers.
    with created.transaction() as tx:
        tx.set_properties(**{"schema.name-mapping.default": created.schema().name_mapping.model_dump_json()})


def _read_own(env: dict, fmt: str, table: str) -> tuple[int, int]:
    """The table as the writer's library reads it: DuckLake through DuckDB, Iceberg through pyiceberg's scan."""
    if fmt.startswith("ducklake"):
        con = s3_connection(env, "postgres", "ducklake")
        _ducklake_attach(con, env, table, read_only=True)
        result = digest(con, TABLE)
        con.close()
        return result
    arrow = _iceberg_catalog(env).load_table(f"{NAMESPACE}.{table}").scan().to_arrow()
    con = duckdb.connect()
    con.register("scanned", arrow)
    result = digest(con, "scanned")
    con.close()
    return result


def _read_second_engine(job) -> tuple[int, int, float]:
    """In a fresh process: DuckDB reading the table without the writer's library. Rows, digest, seconds."""
    env, fmt, table, metadata_location = job
    started = time.time()
    if fmt.startswith("ducklake"):
        con = s3_connection(env, "postgres", "ducklake")
        _ducklake_attach(con, env, table, read_only=True)
        relation = TABLE
    else:
        con = s3_connection(env, "avro", "iceberg")
        relation = f"iceberg_scan('{metadata_location}')"
    rows, table_digest = digest(con, relation)
    con.close()
    return rows, table_digest, round(time.time() - started, 2)


def _fresh_process(function, job):
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, (job,))


def _metadata_location(env: dict, fmt: str, table: str) -> str | None:
    if fmt.startswith("ducklake"):
        return None
    return _iceberg_catalog(env).load_table(f"{NAMESPACE}.{table}").metadata_location


def _reference(env: dict, days: list[int]) -> tuple[int, int]:
    """The days computed directly from the CSVs, in one DuckDB: what every table must hold."""
    con = s3_connection(env)
    union = " UNION ALL ".join(f"({partition_select(BUCKET, day)})" for day in days)
    result = digest(con, f"({union})")
    con.close()
    return result


def _objects(s3, prefix: str) -> dict[str, datetime]:
    """Every object under `prefix` of the bucket: its s3:// URL and when it was written."""
    found = {}
    for page in s3.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for item in page.get("Contents", []):
            found[f"s3://{BUCKET}/{item['Key']}"] = item["LastModified"]
    return found


def _table_prefix(fmt: str, table: str) -> str:
    return f"{table}/" if fmt.startswith("ducklake") else f"iceberg/{table}/"


def _crash_victim(env: dict, fmt: str, table: str, day: int, queue) -> None:
    """Writes the day's files, says so, then waits to be killed before it commits."""
    writer = Writer(env, fmt, table)
    written = writer.write(day)
    if fmt == "ducklake_sql":
        # DuckLake writes the files during the INSERT; the COMMIT would make them the table's.
        writer.con.execute("BEGIN")
        writer.con.execute(f"DELETE FROM {TABLE} WHERE day = DATE '{day_string(day)}'")
        writer.con.execute(f"INSERT INTO {TABLE} {written}")
    queue.put("written")
    time.sleep(600)


def _crash_check(env: dict, s3, fmt: str, table: str, day: int, reference: tuple[int, int]) -> dict:
    """SIGKILL a worker between its files and its commit: the table must stay as it was, the files
    it left must be unreferenced, and a re-run of the day must give the same table."""
    before_objects = _objects(s3, _table_prefix(fmt, table))
    context = mp.get_context("spawn")
    queue = context.Queue()
    victim = context.Process(target=_crash_victim, args=(env, fmt, table, day, queue))
    victim.start()
    queue.get(timeout=300)
    os.kill(victim.pid, signal.SIGKILL)
    victim.join(timeout=60)
    left = sorted(set(_objects(s3, _table_prefix(fmt, table))) - set(before_objects))
    unchanged = _read_own(env, fmt, table) == reference
    rerun = _worker((env, fmt, table, [day]))
    after_rerun = _read_own(env, fmt, table) == reference
    return {
        "killed_exit_code": victim.exitcode,
        "table_unchanged_after_kill": unchanged,
        "files_left_unreferenced": len(left),
        "rerun_retries": rerun[0][1],
        "table_equal_after_rerun": after_rerun,
        "ok": unchanged and after_rerun and victim.exitcode == -signal.SIGKILL,
    }


def _retention(env: dict, s3, fmt: str, table: str, reference: tuple[int, int]) -> dict:
    """Expire every snapshot but the current one and delete the files nothing references any more;
    the table must read the same, by its library and by the second engine, and an expired snapshot
    must be gone. (A real retention keeps days, not seconds; the calls are the same.)"""
    prefix = _table_prefix(fmt, table)
    objects_before = len(_objects(s3, prefix))
    cutoff = datetime.now(UTC)
    time.sleep(1)  # every file of the benchmark is older than the cutoff
    if fmt.startswith("ducklake"):
        con = s3_connection(env, "postgres", "ducklake")
        _ducklake_attach(con, env, table)
        snapshots = [
            r[0] for r in con.execute("SELECT snapshot_id FROM ducklake_snapshots('lake') ORDER BY 1").fetchall()
        ]
        started = time.time()
        con.execute(f"CALL ducklake_expire_snapshots('lake', older_than => TIMESTAMPTZ '{cutoff.isoformat()}')")
        con.execute("CALL ducklake_cleanup_old_files('lake', cleanup_all => true)")
        con.execute(f"CALL ducklake_delete_orphaned_files('lake', older_than => TIMESTAMPTZ '{cutoff.isoformat()}')")
        seconds = time.time() - started
        kept = con.execute("SELECT count(*) FROM ducklake_snapshots('lake')").fetchone()[0]
        try:
            con.execute(f"SELECT count(*) FROM {TABLE} AT (VERSION => {snapshots[1]})").fetchone()
            expired_readable = True
        except duckdb.Error:
            expired_readable = False
        con.close()
        calls = [
            "`CALL ducklake_expire_snapshots('lake', older_than => <cutoff>)`",
            "`CALL ducklake_cleanup_old_files('lake', cleanup_all => true)`",
            "`CALL ducklake_delete_orphaned_files('lake', older_than => <cutoff>)`",
        ]
    else:
        table_ = _iceberg_catalog(env).load_table(f"{NAMESPACE}.{table}")
        snapshots = [s.snapshot_id for s in table_.snapshots()]
        started = time.time()
        table_.maintenance.expire_snapshots().older_than(cutoff).commit()
        deleted = _remove_unreferenced_iceberg_files(s3, table_, prefix, cutoff)
        seconds = time.time() - started
        table_ = _iceberg_catalog(env).load_table(f"{NAMESPACE}.{table}")
        kept = len(table_.snapshots())
        try:
            table_.scan(snapshot_id=snapshots[1]).to_arrow()
            expired_readable = True
        except ValueError:
            expired_readable = False
        calls = [
            "`table.maintenance.expire_snapshots().older_than(<cutoff>).commit()`",
            f"then this benchmark's sweep (pyiceberg 0.12 has none): objects under the table's location older "
            f"than the cutoff that no metadata reaches, deleted with S3 DeleteObjects ({deleted} deleted)",
        ]
    own = _read_own(env, fmt, table) == reference
    second = _fresh_process(_read_second_engine, (env, fmt, table, _metadata_location(env, fmt, table)))
    return {
        "calls": calls,
        "snapshots_before": len(snapshots),
        "snapshots_after": kept,
        "objects_before": objects_before,
        "objects_after": len(_objects(s3, prefix)),
        "seconds": round(seconds, 2),
        "expired_snapshot_readable": expired_readable,
        "table_equal_after": own,
        "second_engine_equal_after": tuple(second[:2]) == reference,
        "ok": own and tuple(second[:2]) == reference and not expired_readable and kept == 1,
    }


def _remove_unreferenced_iceberg_files(s3, table, prefix: str, cutoff: datetime) -> int:
    """pyiceberg 0.12's expire_snapshots removes snapshots from the metadata but deletes no file
    (apache/iceberg-python#2604), and it has no orphan-file removal (#1200): this is that sweep.
    Reachable: the current metadata file and its log, every snapshot's manifest list, every manifest
    and every data file they list. Only files older than `cutoff` go (a running write's files are new)."""
    reachable = {table.metadata_location, *(entry.metadata_file for entry in table.metadata.metadata_log)}
    reachable |= {snapshot.manifest_list for snapshot in table.snapshots()}
    reachable |= set(table.inspect.all_manifests()["path"].to_pylist())
    reachable |= set(table.inspect.all_files()["file_path"].to_pylist())
    doomed = [url for url, written in _objects(s3, prefix).items() if url not in reachable and written < cutoff]
    client = s3.client()
    for start in range(0, len(doomed), 1000):
        keys = [{"Key": url.removeprefix(f"s3://{BUCKET}/")} for url in doomed[start : start + 1000]]
        client.delete_objects(Bucket=BUCKET, Delete={"Objects": keys})
    return len(doomed)


def _sqlite_catalog_probe(folder: Path) -> dict:
    """pyiceberg's SQL catalog on a local SQLite file, data on the local disk: one add_files, one scan."""
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("probe", uri=f"sqlite:///{folder}/catalog.db", warehouse=f"file://{folder}/warehouse")
    catalog.create_namespace("probe")
    table = catalog.create_table("probe.t", schema=_iceberg_schema())
    path = folder / "rows.parquet"
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT DATE '2026-10-01' AS day, 'e' || i AS event_id, 'u' AS user_id, 'view' AS event_type, "
        "TIMESTAMPTZ '2026-10-01 00:00:00+00' AS event_time, 1.0::DOUBLE AS amount, 'k' AS user_type_key, "
        f"i::BIGINT AS payload_bytes FROM range(3) r(i)) TO '{path}' (FORMAT parquet)"
    )
    con.close()
    table.add_files([str(path)])
    rows = catalog.load_table("probe.t").scan().to_arrow().num_rows
    return {"rows": rows, "ok": rows == 3}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rows-per-day", type=int, default=100_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    parser.add_argument(
        "--iceberg-retry-min-wait-ms",
        type=int,
        help="the Iceberg tables' commit.retry.min-wait-ms (pyiceberg's first wait before redoing a commit, "
        "doubled each time; default: pyiceberg's, 100)",
    )
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--out-name", default="table_formats", help="the results' file name, without .json/.md")
    args = parser.parse_args()

    import pyiceberg

    iceberg_properties = {}
    if args.iceberg_retry_min_wait_ms is not None:
        iceberg_properties["commit.retry.min-wait-ms"] = str(args.iceberg_retry_min_wait_ms)
    results: dict = {
        "days": args.days,
        "rows_per_day": args.rows_per_day,
        "machine": {**machine(), "pyiceberg": pyiceberg.__version__},
        "iceberg_table_properties": iceberg_properties,
        "runs": {},
        "crash": {},
        "retention": {},
        "race": {},
    }
    with servers(BUCKET, args.days, args.rows_per_day) as (env, pg, s3), tempfile.TemporaryDirectory() as tmp:
        results["sqlite_catalog"] = _sqlite_catalog_probe(Path(tmp))
        reference = _reference(env, list(range(1, args.days + 1)))
        results["reference"] = {"rows": reference[0], "digest": str(reference[1])}
        for fmt in args.formats:
            for workers in args.workers:
                table = f"{fmt}_{workers}"
                _prepare(env, pg, fmt, table, iceberg_properties)
                passes = {}
                for name in ("fill", "replace"):
                    # The machine is shared: its load around a pass says whether other work ran meanwhile.
                    load_before = os.getloadavg()[0]
                    done = run_pass(_worker, [(env, fmt, table, share) for share in shares(args.days, workers)])
                    passes[name] = {
                        "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                        **summary(done),
                        "data_rewrites": sum(d[7] for d in done),
                        "write_s_median": round(sorted(d[5] for d in done)[len(done) // 2], 3),
                        "commit_s_median": round(sorted(d[6] for d in done)[len(done) // 2], 3),
                    }
                own = _read_own(env, fmt, table)
                second = _fresh_process(_read_second_engine, (env, fmt, table, _metadata_location(env, fmt, table)))
                run = {
                    "format": fmt,
                    "workers": workers,
                    **passes,
                    "rows": own[0],
                    "digest": str(own[1]),
                    "equal_to_reference": own == reference,
                    "second_engine": {"rows": second[0], "equal": tuple(second[:2]) == reference, "seconds": second[2]},
                }
                results["runs"][f"{fmt}/{workers}"] = run
                print(json.dumps(run), flush=True)
            table = f"{fmt}_{args.workers[-1]}"
            if fmt != "iceberg_pyarrow":  # its files are written inside pyiceberg's commit call
                results["crash"][fmt] = _crash_check(env, s3, fmt, table, 1, reference)
                print(json.dumps({fmt: results["crash"][fmt]}), flush=True)
            results["retention"][fmt] = _retention(env, s3, fmt, table, reference)
            print(json.dumps({fmt: results["retention"][fmt]}), flush=True)
            results["race"][fmt] = _same_day_race(
                env, pg, fmt, 1, args.rows_per_day, _reference(env, [1]), iceberg_properties
            )
            print(json.dumps({fmt: results["race"][fmt]}), flush=True)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / f"{args.out_name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out_dir / f"{args.out_name}.md").write_text(_report(results, args.workers))
    print(_report(results, args.workers))
    checks = [r["equal_to_reference"] and r["second_engine"]["equal"] for r in results["runs"].values()]
    checks += [c["ok"] for c in results["crash"].values()] + [c["ok"] for c in results["retention"].values()]
    return 0 if all(checks) and results["sqlite_catalog"]["ok"] else 1


def _report(results: dict, workers: list[int]) -> str:
    m = results["machine"]
    widest = workers[-1]
    lines = [
        "# Partition replaces on open table formats",
        "",
        f"{results['days']} day-partitions of {results['rows_per_day']:,} rows, written by W worker processes; "
        f"{m['cpus']} cores, DuckDB {m['duckdb']} (its DuckLake and iceberg extensions from their {m['duckdb']} wheels), "
        f"pyiceberg {m['pyiceberg']}. Catalogs in PostgreSQL, data as Parquet on a local S3 server, both on this "
        "machine (benchmarks/table_formats.py)."
        + (
            " Iceberg tables' properties: "
            + ", ".join(f"`{k}` = {v}" for k, v in results["iceberg_table_properties"].items())
            + "; pyiceberg's defaults otherwise."
            if results.get("iceberg_table_properties")
            else " pyiceberg's default commit retries (`commit.retry.num-retries` 4, `min-wait-ms` 100, doubling)."
        ),
        "",
        "Wall: first partition's start to last one's end. *Fill*: the table empty; *replace*: every day rebuilt "
        "over the filled table (a re-run). Redone: commits that conflicted and were redone, all workers (pyiceberg's "
        "own retries included); *data*: of those, how many wrote the day's data again (the rest redid metadata "
        f"only). Commit: median seconds from the day's files written to its commit done (W={widest}, redone "
        "commits included; for `ducklake_sql` the whole transaction, data included). Same rows: count and hash "
        "equal to the days computed from the CSVs, read by the writer's library / by a second engine in a fresh "
        "process.",
        "",
        "| format | pass | "
        + " | ".join(f"W={w}" for w in workers)
        + " | "
        + " | ".join(f"speedup W={w}" for w in workers[1:])
        + " | redone "
        + "/".join(f"W={w}" for w in workers)
        + " | data | commit s | same rows |",
        "|---|---|" + "---:|" * (2 * len(workers) - 1) + "---:|---:|---:|---|",
    ]
    formats = list(dict.fromkeys(r["format"] for r in results["runs"].values()))
    for fmt in formats:
        runs = [results["runs"][f"{fmt}/{w}"] for w in workers]
        own = "yes" if all(r["equal_to_reference"] for r in runs) else "NO"
        second = "yes" if all(r["second_engine"]["equal"] for r in runs) else "NO"
        for name in ("fill", "replace"):
            cells = " | ".join(f"{r[name]['wall_s']:.1f} s" for r in runs)
            speedups = " | ".join(f"{runs[0][name]['wall_s'] / r[name]['wall_s']:.2f}×" for r in runs[1:])
            redone = "/".join(str(r[name]["retries"]) for r in runs)
            rewrites = "/".join(str(r[name]["data_rewrites"]) for r in runs)
            lines.append(
                f"| `{fmt}` | {name} | {cells} | {speedups} | {redone} | {rewrites} | "
                f"{runs[-1][name]['commit_s_median']:.3f} | {own} / {second} |"
            )
    loads = [
        load for run in results["runs"].values() for name in ("fill", "replace") for load in run[name]["load_1min"]
    ]
    lines += [
        "",
        f"The machine's 1-minute load average before and after each pass: {min(loads):.1f} to {max(loads):.1f} "
        "(this benchmark alone: up to about W + 1).",
        "",
        f"Second engine reading the W={widest} table in a fresh process: "
        + "; ".join(
            f"`{fmt}` {results['runs'][f'{fmt}/{widest}']['second_engine']['seconds']:.1f} s" for fmt in formats
        )
        + " (DuckLake: DuckDB attaching the catalog read-only; Iceberg: DuckDB's iceberg extension, "
        "`iceberg_scan` of the current metadata file).",
        "",
        "## Two runs of the same day committing at once",
        "",
        "Two processes stage the same day's replace, meet at a barrier, then commit (redone on conflict).",
        "",
        "| format | on an empty day (first fill): rows, exactly once | on a filled day (re-run): rows, exactly once |",
        "|---|---|---|",
    ]
    for fmt, race in results["race"].items():
        cells = [
            f"{c['rows']:,} of {c['expected_rows']:,}, {'yes' if c['exactly_once'] else 'NO'} ({c['redone']} redone)"
            for c in (race["empty_day"], race["filled_day"])
        ]
        lines.append(f"| `{fmt}` | {cells[0]} | {cells[1]} |")
    lines += [
        "",
        "## A worker killed between its files and its commit (SIGKILL)",
        "",
        f"On the W={widest} table, day 1. `iceberg_pyarrow` is left out: pyiceberg writes its files inside the "
        "commit call.",
        "",
        "| format | table unchanged | files left, unreferenced | day re-run: same table |",
        "|---|---|---:|---|",
    ]
    for fmt, crash in results["crash"].items():
        lines.append(
            f"| `{fmt}` | {'yes' if crash['table_unchanged_after_kill'] else 'NO'} | {crash['files_left_unreferenced']} "
            f"| {'yes' if crash['table_equal_after_rerun'] else 'NO'} |"
        )
    lines += [
        "",
        "## Snapshot retention",
        "",
        f"On the W={widest} table after the crash check: every snapshot older than now expired, then the files "
        "nothing references deleted (a real retention keeps days; the calls are the same). Objects: everything "
        "under the table's prefix on S3 (DuckLake: data files; Iceberg: data and metadata files).",
        "",
        "| format | snapshots | objects on S3 | seconds | expired snapshot readable | table the same (own / second engine) |",
        "|---|---:|---:|---:|---|---|",
    ]
    for fmt, kept in results["retention"].items():
        lines.append(
            f"| `{fmt}` | {kept['snapshots_before']} → {kept['snapshots_after']} | {kept['objects_before']} → "
            f"{kept['objects_after']} | {kept['seconds']:.1f} | {'yes' if kept['expired_snapshot_readable'] else 'no'} "
            f"| {'yes' if kept['table_equal_after'] else 'NO'} / {'yes' if kept['second_engine_equal_after'] else 'NO'} |"
        )
    lines += ["", "Calls:", ""]
    for fmt, kept in results["retention"].items():
        lines.append(f"- `{fmt}`: " + "; ".join(kept["calls"]))
    probe = results["sqlite_catalog"]
    lines += [
        "",
        "pyiceberg's SQL catalog on a local SQLite file (data on the local disk): add_files and a scan "
        f"{'work' if probe['ok'] else 'FAILED'} ({probe['rows']} rows).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
