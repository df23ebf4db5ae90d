"""The scale-out demonstration (`make scale-demo`, docs/scaling.md): a 30-partition backfill of
`raw_events` against a local S3 server, with 1 and then 2 concurrent runs, through Dagster's own
machinery: `dagster dev` (webserver, daemon, the queue and its `max_concurrent_runs`), a partition
backfill launched as the UI launches it, one run per day (`ML_PLATFORM_PARALLEL_RAW`).

Steps:
1. Start a local S3 server (moto, over HTTP); generate the demo's 30 days of landing files.
2. The embedded run for reference: the local folder and one DuckDB file, one range run in process.
3. For W in (1, 2): a fresh DAGSTER_HOME allowing W concurrent runs and a fresh warehouse; start
   `dagster dev` on an empty bucket, stop the sensors (the backfill is the only work), land the
   files on S3, launch the backfill, wait until all 30 runs succeeded.
4. Compare: `raw_events` (rows and hash, ingestion time left out) and the ingest ledger must equal
   the embedded run's; the speedup is W=1's wall over W=2's.

Results: `benchmarks/results/scaleout_demo.{json,md}`; exits 1 when a table differs or W=2 is not
faster. About five minutes here.

    .venv/bin/python benchmarks/scaleout_demo.py [--days 30] [--events-per-day 20000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "platform"), str(ROOT / "platform_tests"), str(ROOT / "benchmarks")]

from dev_platform import started_platform  # noqa: E402

from platform_server import _location_loaded  # noqa: E402
from s3_server import REGION, local_s3  # noqa: E402

BUCKET = "scale-demo"
_BACKFILL = """
mutation ($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }
"""
_BACKFILL_RUNS = """
query ($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
  ... on PartitionBackfill { status runs(limit: 1000) { runId status startTime endTime } } } }
"""
# Table -> (columns left out: when the run happened, not what it read; the rows compared).
DIGESTS = {
    "raw_events": (("ingested_at",), "TRUE"),
    "ingest_ledger": (("ingested_at", "modified_at"), "source = 'events'"),
}


def _digests(warehouse: Path) -> dict[str, list[int]]:
    """Per table: rows and an order-independent hash of them."""
    from ml_platform.warehouse.resource import connect

    con = connect(warehouse, read_only=True)
    try:
        found = {}
        for table, (left_out, where) in DIGESTS.items():
            columns = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall() if r[0] not in left_out]
            row = ", ".join(f'"{c}"' for c in columns)
            query = f"SELECT count(*), sum(hash({row})::HUGEINT) FROM {table} WHERE {where}"
            found[table] = [int(v) for v in con.execute(query).fetchone()]
        return found
    finally:
        con.close()


def _embedded(landing: Path, work: Path, days: list[str]) -> dict:
    """The reference: the embedded mode (local folder, one DuckDB file), one range run in process."""
    data = work / "embedded"
    shutil.copytree(landing, data / "landing")
    saved = dict(os.environ)
    os.environ["ML_PLATFORM_DATA_DIR"] = str(data)
    for name in ("ML_PLATFORM_STORAGE", "ML_PLATFORM_PARALLEL_RAW"):
        os.environ.pop(name, None)
    try:
        from ml_platform.definitions import build_definitions

        defs = build_definitions()
        started = time.perf_counter()
        with dg.instance_for_test() as instance:
            result = dg.materialize(
                [defs.get_assets_def("raw_events")],
                instance=instance,
                resources=defs.resources,
                tags={"dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[-1]},
            )
            assert result.success
        return {"wall_s": round(time.perf_counter() - started, 2), "digests": _digests(data / "warehouse.duckdb")}
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _dagster_yaml(work: Path, workers: int) -> Path:
    text = (ROOT / "dagster.yaml").read_text()
    assert "max_concurrent_runs: 4" in text
    path = work / f"dagster-{workers}.yaml"
    path.write_text(text.replace("max_concurrent_runs: 4", f"max_concurrent_runs: {workers}"))
    return path


def _scaled(landing: Path, work: Path, days: list[str], workers: int, s3) -> dict:
    """The backfill on S3 with `workers` concurrent runs, through dagster dev."""
    from ml_platform.storage.aws import aws_access
    from ml_platform.storage.landing_upload import upload_landing
    from ml_platform.storage.location import parse

    prefix = f"s3://{BUCKET}/w{workers}"
    work.mkdir(parents=True)
    os.environ.update(
        {**s3.env(prefix), "ML_PLATFORM_PARALLEL_RAW": "true", "ML_PLATFORM_DATA_DIR": str(work / "data")}
    )
    with started_platform(ROOT, work, _dagster_yaml(work, workers)) as (platform, _):
        platform.wait_for(lambda: _location_loaded(platform), 180, what="the code location")
        for sensor in _sensor_names():
            platform.wait_for(lambda s=sensor: _stopped(platform, s), 120, what=f"{sensor} stopped")
        upload_landing(landing, parse(prefix), aws_access())
        launched = time.time()
        result = platform.graphql(
            _BACKFILL,
            {"params": {"assetSelection": [{"path": ["raw_events"]}], "partitionNames": days, "fromFailure": False}},
        )["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"backfill not launched: {result}")
        backfill = result["backfillId"]

        def finished():
            data = platform.graphql(_BACKFILL_RUNS, {"id": backfill})["partitionBackfillOrError"]
            runs = data["runs"]
            done = [r for r in runs if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
            return runs if len(runs) == len(days) and len(done) == len(runs) else None

        runs = platform.wait_for(finished, 1800, interval=1.0, what="the backfill's runs")
        ended = time.time()
    failed = [r["runId"] for r in runs if r["status"] != "SUCCESS"]
    if failed:
        raise RuntimeError(f"{len(failed)} run(s) of the backfill failed: {failed}")
    starts = [r["startTime"] for r in runs]
    ends = [r["endTime"] for r in runs]
    return {
        "workers": workers,
        "runs": len(runs),
        "wall_s": round(ended - launched, 2),
        "runs_span_s": round(max(ends) - min(starts), 2),
        "digests": _digests(work / "data" / "warehouse.duckdb"),
    }


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
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    end = dt.date(2026, 10, 31)
    days = [(end - dt.timedelta(days=args.days - 1 - i)).isoformat() for i in range(args.days)]

    from ml_platform.demo import generate

    with tempfile.TemporaryDirectory(prefix="scale-demo-") as tmp, local_s3() as s3:
        work = Path(tmp)
        generate(work / "demo", args.days, args.events_per_day, seed=7, end_date=end, telemetry_hours_per_day=1)
        landing = work / "demo" / "landing"
        s3.client().create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        embedded = _embedded(landing, work, days)
        print(json.dumps({"embedded": embedded}), flush=True)
        scaled = {}
        for workers in (1, 2):
            scaled[workers] = _scaled(landing, work / f"w{workers}", days, workers, s3)
            print(json.dumps(scaled[workers]), flush=True)
    equal = {w: run["digests"] == embedded["digests"] for w, run in scaled.items()}
    speedup = scaled[1]["wall_s"] / scaled[2]["wall_s"]
    results = {
        "days": args.days,
        "events_per_day": args.events_per_day,
        "cpus": os.cpu_count(),
        "duckdb": duckdb.__version__,
        "embedded": embedded,
        "scaled": scaled,
        "equal_to_embedded": equal,
        "speedup": round(speedup, 2),
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "scaleout_demo.json").write_text(json.dumps(results, indent=2) + "\n")
    report = _report(results)
    (args.out_dir / "scaleout_demo.md").write_text(report)
    print(report)
    return 0 if all(equal.values()) and speedup > 1 else 1


def _report(results: dict) -> str:
    one, two = results["scaled"][1], results["scaled"][2]
    return "\n".join(
        [
            f"# Scale-out: a {results['days']}-partition raw backfill on S3, 1 and 2 concurrent runs",
            "",
            f"{results['days']} landing days of the demo ({results['events_per_day']:,} events a day) on a local S3"
            f" server; `raw_events` backfilled through `dagster dev`, one run per day; {results['cpus']} cores"
            " (benchmarks/scaleout_demo.py, `make scale-demo`).",
            "",
            "| concurrent runs | runs | backfill wall | first start -> last end | raw_events and ledger equal to embedded |",
            "|---:|---:|---:|---:|---|",
            *(
                f"| {r['workers']} | {r['runs']} | {r['wall_s']:.1f} s | {r['runs_span_s']:.1f} s |"
                f" {'yes' if results['equal_to_embedded'][r['workers']] else 'NO'} |"
                for r in (one, two)
            ),
            "",
            f"Speedup with 2 concurrent runs: **{results['speedup']:.2f}×** (backfill wall). The embedded mode, one"
            f" range run in process on the local folder: {results['embedded']['wall_s']:.1f} s.",
            "",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
