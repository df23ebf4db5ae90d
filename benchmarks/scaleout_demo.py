"""The scale-out demonstration (`make scale-demo`, docs/scaling.md): a 30-day backfill of raw ->
clean -> features with 1, 2 and 4 workers that share nothing but PostgreSQL and the S3 server.

The deployed topology (`deploy/dagster.yaml`) on one machine (`platform_tests/deploy_topology.py`):
Dagster's runs, event logs and pool slots in PostgreSQL, its queued coordinator allowing W runs at
once, step logs on S3; only the ECS launcher is replaced, by one that starts each run as a fresh
process in a new folder of its own (its working directory and data folder, so its warehouse file is
its own). The landing files and the lake's files are on S3, the lake's catalog in PostgreSQL.

Steps:
1. Start PostgreSQL and a local S3 server (moto, over HTTP); generate the demo's 30 days of landing
   files.
2. The embedded run for reference: the local folder and one DuckDB file, range runs in process.
3. For W in (1, 2, 4): a Dagster storage and a catalog of their own (two PostgreSQL databases), an
   S3 prefix of its own; `dagster dev` (webserver, daemon) on that instance; the sensors stopped
   (the backfill is the only work); the files landed on S3; a backfill of the assets over the 30
   days launched as the UI launches it (raw: one run per day, `ML_PLATFORM_PARALLEL_RAW`; clean and
   features: one range run each, in the `duckdb` pool); wait until it completed.
4. Compare: every table, read from the catalog by a fresh process with a new warehouse file, equals
   the embedded run's (rows and hash, the columns saying when something ran left out); the speedup
   is W=1's wall over W's.

Results: `benchmarks/results/scaleout_demo.{json,md}`; exits 1 when a table differs, a run did not
run in a folder of its own, or more workers were not faster. About twenty minutes here (22 measured).

    .venv/bin/python benchmarks/scaleout_demo.py [--days 30] [--events-per-day 20000] [--workers 1,2,4]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "platform"), str(ROOT / "platform_tests"), str(ROOT / "benchmarks")]

from dev_platform import started_platform  # noqa: E402

from deploy_topology import one_machine_instance  # noqa: E402
from platform_server import _location_loaded  # noqa: E402
from postgres_server import postgres_server  # noqa: E402
from s3_server import REGION, local_s3  # noqa: E402

BUCKET = "scale-demo"
# Raw, clean and features: the events with the users' history they join.
ASSETS = ["raw_users", "raw_events", "clean_users", "clean_events", "user_daily_features"]
UNPARTITIONED = {"clean_users"}  # a snapshot history: built whole
# A key of the demo's own, the same for every build: pseudonymized columns compare equal.
PSEUDONYM_KEY = "5ca1e0de" * 8
_BACKFILL = """
mutation ($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }
"""
_BACKFILL_RUNS = """
query ($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
  ... on PartitionBackfill { status runs(limit: 1000) { runId status startTime endTime } } } }
"""
BACKFILL_DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
# Table -> columns left out: when or where a run happened, not what it read.
DIGESTS = {
    "raw_users": ("ingested_at",),
    "raw_events": ("ingested_at",),
    "ingest_ledger": ("ingested_at", "modified_at"),
    "clean_users": ("ingested_at",),
    "clean_events": ("ingested_at",),
    "user_daily_features": (),
}


def digests() -> dict[str, list[int]]:
    """Per table: rows and an order-independent hash of them, read from the lake as this process's
    environment says (a new warehouse file under ML_PLATFORM_DATA_DIR: its first write transaction
    makes a view of every lake table in the catalog)."""
    from ml_platform import settings
    from ml_platform.lakehouse import views  # noqa: F401 (registers the views' refresh at a transaction's start)
    from ml_platform.warehouse import Warehouse

    warehouse = Warehouse(database=str(settings.warehouse_path()))
    with warehouse.transaction():
        pass
    with warehouse.read() as con:
        found = {}
        for table, left_out in DIGESTS.items():
            columns = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall() if r[0] not in left_out]
            row = ", ".join(f'"{c}"' for c in columns)
            found[table] = [
                int(v) for v in con.execute(f"SELECT count(*), sum(hash({row})::HUGEINT) FROM {table}").fetchone()
            ]
        return found


def _digests_in_a_new_process(env: dict[str, str], folder: Path) -> dict[str, list[int]]:
    """`digests()` in a fresh process, with `env` and a new data folder: it reads only the catalog
    and the files the tables name."""
    folder.mkdir(parents=True)
    result = subprocess.run(
        [sys.executable, __file__, "--digests"],
        env={**env, "ML_PLATFORM_DATA_DIR": str(folder)},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"reading the tables failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.splitlines()[-1])


@contextmanager
def _environment(values: dict[str, str]):
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _embedded(landing: Path, work: Path, days: list[str]) -> dict:
    """The reference: the embedded mode (local folder, one DuckDB file, the local catalog), range
    runs in process."""
    data = work / "embedded"
    shutil.copytree(landing, data / "landing")
    local = {"ML_PLATFORM_DATA_DIR": str(data)}
    with _environment(local):
        for name in ("ML_PLATFORM_STORAGE", "ML_PLATFORM_PARALLEL_RAW", "ML_PLATFORM_CATALOG_URL"):
            os.environ.pop(name, None)
        from ml_platform.definitions import build_definitions

        defs = build_definitions()
        started = time.perf_counter()
        range_tags = {"dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[-1]}
        with dg.instance_for_test() as instance:
            for asset in ASSETS:
                result = dg.materialize(
                    [defs.get_assets_def(asset)],
                    instance=instance,
                    resources=defs.resources,
                    tags={} if asset in UNPARTITIONED else range_tags,
                )
                assert result.success, asset
        wall = round(time.perf_counter() - started, 2)
        # Read back as the scaled runs' tables are: by a new process, from the catalog.
        env = {**os.environ, "ML_PLATFORM_CATALOG_URL": f"sqlite:///{data / 'lake' / 'catalog.db'}"}
    return {"wall_s": wall, "digests": _digests_in_a_new_process(env, work / "embedded-read")}


def _scaled(pg, s3, landing: Path, work: Path, days: list[str], workers: int) -> dict:
    """The backfill with `workers` runs at once, each in a folder of its own, through `dagster dev`
    on the deployed instance; PostgreSQL databases and an S3 prefix of its own."""
    from ml_platform.storage.aws import aws_access
    from ml_platform.storage.landing_upload import upload_landing
    from ml_platform.storage.location import parse

    for db in (f"dagster_w{workers}", f"catalog_w{workers}"):
        pg.sql(f"CREATE DATABASE {db} OWNER {pg.user};", db="postgres")
    prefix = f"s3://{BUCKET}/w{workers}"
    runs_dir = work / "runs"
    work.mkdir(parents=True)
    (work / "dagster.yaml").write_text(one_machine_instance(runs_dir))
    shared = {
        **pg.env("DAGSTER_PG"),
        "DAGSTER_PG_DB": f"dagster_w{workers}",
        "ML_PLATFORM_MAX_CONCURRENT_RUNS": str(workers),
        "DAGSTER_COMPUTE_LOGS_BUCKET": BUCKET,
        "AWS_ENDPOINT_URL_S3": s3.endpoint,
        **s3.env(prefix),
        "ML_PLATFORM_CATALOG_URL": (
            f"postgresql+psycopg2://{pg.user}:{pg.password}@{pg.host}:{pg.port}/catalog_w{workers}"
        ),
        "ML_PLATFORM_PARALLEL_RAW": "true",
    }
    with _environment(shared), started_platform(ROOT, work, work / "dagster.yaml", weather_api=False) as (platform, _):
        platform.wait_for(lambda: _location_loaded(platform), 180, what="the code location")
        for sensor in _sensor_names():
            platform.wait_for(lambda s=sensor: _stopped(platform, s), 120, what=f"{sensor} stopped")
        upload_landing(landing, parse(prefix), aws_access())
        launched = time.time()
        result = platform.graphql(
            _BACKFILL,
            {"params": {"partitionsByAssets": _partitions_by_asset(days), "fromFailure": False}},
        )["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"backfill not launched: {result}")
        backfill = result["backfillId"]

        def finished():
            data = platform.graphql(_BACKFILL_RUNS, {"id": backfill})["partitionBackfillOrError"]
            runs = data["runs"]
            ended = all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs)
            return runs if data["status"] in BACKFILL_DONE and ended else None

        runs = platform.wait_for(finished, 1800, interval=1.0, what="the backfill's runs")
        ended = time.time()
        env = dict(os.environ)
    failed = [r["runId"] for r in runs if r["status"] != "SUCCESS"]
    if failed:
        logs = "\n".join(f"--- {run_id}:\n" + (runs_dir / run_id / "run.log").read_text()[-4000:] for run_id in failed)
        raise RuntimeError(f"{len(failed)} run(s) of the backfill failed: {failed}\n{logs}")
    starts = [r["startTime"] for r in runs]
    ends = [r["endTime"] for r in runs]
    folders = {path.name for path in runs_dir.iterdir()}
    return {
        "workers": workers,
        "runs": len(runs),
        "wall_s": round(ended - launched, 2),
        "runs_span_s": round(max(ends) - min(starts), 2),
        # Every run ran in a folder of its own, with a warehouse file of its own.
        "runs_in_own_folders": sum(
            r["runId"] in folders and (runs_dir / r["runId"] / "warehouse.duckdb").exists() for r in runs
        ),
        "digests": _digests_in_a_new_process(env, work / "read"),
    }


def _partitions_by_asset(days: list[str]) -> list[dict]:
    """The backfill's partitions, asset by asset as the embedded runs write them: the days of every
    daily asset (a backfill of the raw days alone would also take in every clean and feature day
    that reads one of them), the snapshot history whole."""
    return [
        {"assetKey": {"path": [asset]}}
        if asset in UNPARTITIONED
        else {"assetKey": {"path": [asset]}, "partitions": {"range": {"start": days[0], "end": days[-1]}}}
        for asset in ASSETS
    ]


def _sensor_names() -> list[str]:
    """Every sensor of the code location (automation, landing, freshness, monitoring)."""
    from ml_platform.definitions import build_definitions

    return [sensor.name for sensor in build_definitions().sensors]


def _stopped(platform, sensor: str) -> bool:
    try:
        platform.set_sensor(sensor, False)
    except Exception:  # not loaded yet
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--events-per-day", type=int, default=20_000)
    parser.add_argument("--workers", default="1,2,4", help="worker counts, the first one the baseline")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--digests", action="store_true", help=argparse.SUPPRESS)  # `digests()`, as JSON
    args = parser.parse_args()
    if args.digests:
        print(json.dumps(digests()))
        return 0
    end = dt.date(2026, 10, 31)
    days = [(end - dt.timedelta(days=args.days - 1 - i)).isoformat() for i in range(args.days)]
    counts = [int(w) for w in args.workers.split(",")]
    os.environ["ML_PLATFORM_PSEUDONYM_KEY"] = PSEUDONYM_KEY

    from ml_platform.demo import generate

    with (
        tempfile.TemporaryDirectory(prefix="scale-demo-") as tmp,
        local_s3() as s3,
        postgres_server(db="platform", user="platform") as pg,
    ):
        work = Path(tmp)
        generate(work / "demo", args.days, args.events_per_day, seed=7, end_date=end, telemetry_hours_per_day=1)
        landing = work / "demo" / "landing"
        s3.client().create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        embedded = _embedded(landing, work, days)
        print(json.dumps({"embedded": embedded}), flush=True)
        scaled = {}
        for workers in counts:
            scaled[workers] = _scaled(pg, s3, landing, work / f"w{workers}", days, workers)
            print(json.dumps(scaled[workers]), flush=True)
    equal = {w: run["digests"] == embedded["digests"] for w, run in scaled.items()}
    own_folders = {w: run["runs_in_own_folders"] == run["runs"] for w, run in scaled.items()}
    baseline = scaled[counts[0]]["wall_s"]
    speedups = {w: round(baseline / run["wall_s"], 2) for w, run in scaled.items()}
    results = {
        "days": args.days,
        "events_per_day": args.events_per_day,
        "assets": ASSETS,
        "cpus": os.cpu_count(),
        "duckdb": duckdb.__version__,
        "embedded": embedded,
        "scaled": scaled,
        "equal_to_embedded": equal,
        "runs_in_own_folders": own_folders,
        "speedup": speedups,
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "scaleout_demo.json").write_text(json.dumps(results, indent=2) + "\n")
    report = _report(results)
    (args.out_dir / "scaleout_demo.md").write_text(report)
    print(report)
    faster = all(speedups[w] > 1 for w in counts[1:])
    return 0 if all(equal.values()) and all(own_folders.values()) and faster else 1


def _report(results: dict) -> str:
    scaled = results["scaled"].values()
    return "\n".join(
        [
            f"# Scale-out: a {results['days']}-day backfill of raw, clean and features, workers sharing only"
            " PostgreSQL and S3",
            "",
            f"{results['days']} landing days of the demo ({results['events_per_day']:,} events a day) on a local S3"
            f" server; {', '.join(f'`{a}`' for a in results['assets'])} backfilled through `dagster dev` on"
            " deploy/dagster.yaml's instance (PostgreSQL storage, queued coordinator), each run a fresh process in a"
            " folder of its own; raw one run per day, clean and features one range run each; the catalog in"
            f" PostgreSQL; {results['cpus']} cores (benchmarks/scaleout_demo.py, `make scale-demo`).",
            "",
            "| workers (runs at once) | runs | backfill wall | first start -> last end | speedup | runs in own folders"
            " | tables equal to embedded |",
            "|---:|---:|---:|---:|---:|---:|---|",
            *(
                f"| {r['workers']} | {r['runs']} | {r['wall_s']:.1f} s | {r['runs_span_s']:.1f} s |"
                f" {results['speedup'][r['workers']]:.2f}× | {r['runs_in_own_folders']} |"
                f" {'yes' if results['equal_to_embedded'][r['workers']] else 'NO'} |"
                for r in scaled
            ),
            "",
            f"Tables compared (rows and hash): {', '.join(f'`{t}`' for t in results['embedded']['digests'])}. The"
            f" embedded mode, range runs in process on the local folder: {results['embedded']['wall_s']:.1f} s.",
            "",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
