"""The platform on S3 (`ML_PLATFORM_STORAGE=s3://bucket/prefix`), against a local S3-compatible
server over real HTTP (`s3_server`): files land on the prefix, the landing sensor lists it through
dagster-aws, DuckDB reads the objects with httpfs, curated tables are exported as Hive-partitioned
Parquet, and the credentials never reach the event log.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import os
import pickle
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from dagster._serdes import serialize_value

from conftest import Runner
from helpers import tick
from s3_server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, local_s3

BUCKET = "ml-lake"
STORAGE = f"s3://{BUCKET}/platform"
EVENTS_HEADER = "event_id,user_id,event_type,event_time,product_id,amount\n"
DAY = "2026-11-02"


@pytest.fixture(scope="module")
def s3_server():
    with local_s3() as server:
        yield server


@pytest.fixture
def lake(s3_server, data_dir, monkeypatch, instance):
    """The platform configured for the local server's bucket, empty, with its code location."""
    s3_server.reset()
    for name, value in s3_server.env(STORAGE).items():
        monkeypatch.setenv(name, value)
    client = s3_server.client()
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    from ml_platform.definitions import build_definitions

    defs = build_definitions()
    return SimpleNamespace(
        server=s3_server,
        client=client,
        defs=defs,
        runner=Runner(defs, instance, data_dir),
        put=lambda relative, body: client.put_object(Bucket=BUCKET, Key=f"platform/landing/{relative}", Body=body),
    )


def _requested(result) -> list[str]:
    return [r.partition_key for r in result.run_requests or []]


def _s3_connection(server) -> duckdb.DuckDBPyConnection:
    from ml_platform.storage.aws import aws_access
    from ml_platform.warehouse.s3 import attach_s3

    con = duckdb.connect()
    attach_s3(con, aws_access())
    return con


def _table_digest(runner: Runner, table: str, without: tuple[str, ...] = ()) -> tuple[int, int]:
    """(rows, order-independent hash of every row), lineage columns of the run left out. Read
    through the platform's own connection, which reads partition files on S3 too."""
    from ml_platform.warehouse.resource import connect

    con = connect(runner.data_dir / "warehouse.duckdb", read_only=True)
    try:
        columns = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall() if r[0] not in without]
        row = ", ".join(f'"{c}"' for c in columns)
        return con.execute(f"SELECT count(*), coalesce(sum(hash({row})::HUGEINT), 0) FROM {table}").fetchone()
    finally:
        con.close()


def _build_demo(runner: Runner, defs: dg.Definitions, instance, days: list[str]) -> None:
    """Sensors' requests, then the demo's users and events through raw, clean and features."""
    assert _requested(tick(defs, instance, "events_landing_sensor")) == days
    assert _requested(tick(defs, instance, "users_landing_sensor")) == days
    runner.run("raw_users", range_=(days[0], days[-1]))
    runner.run("clean_users")
    runner.run("raw_events", range_=(days[0], days[-1]))
    runner.run("clean_events", range_=(days[0], days[-1]))
    runner.run("user_daily_features", range_=(days[0], days[-1]))


def _land_demo(tmp_path: Path, days: int) -> Path:
    """The demo's files for `days` days up to 2026-11-0<days>, generated locally and landed on S3."""
    from ml_platform.demo import generate
    from ml_platform.storage.aws import aws_access
    from ml_platform.storage.landing_upload import upload_landing
    from ml_platform.storage.location import parse

    demo = tmp_path / "demo"
    generate(demo, days=days, events_per_day=300, seed=11, end_date=dt.date(2026, 11, days), telemetry_hours_per_day=1)
    uploaded = upload_landing(demo / "landing", parse(STORAGE), aws_access())
    assert {p.split("/")[0] for p in uploaded} >= {"events", "users"}
    return demo


def test_the_demo_flows_from_s3_to_the_lake_export_as_it_does_from_the_local_folder(
    lake, instance, data_dir, tmp_path, monkeypatch
):
    days = ["2026-11-01", "2026-11-02", "2026-11-03"]
    demo = _land_demo(tmp_path, days=3)
    _build_demo(lake.runner, lake.defs, instance, days)
    lineage = ("ingested_at", "source_file")
    compared = ("raw_events", "clean_events", "clean_users", "user_daily_features")
    # Read while the S3 settings are there: the lake tables' files are on S3.
    on_s3 = {table: _table_digest(lake.runner, table, without=lineage) for table in compared}

    # The embedded default on the same files: a local landing folder and its own warehouse.
    local = tmp_path / "local"
    shutil.copytree(demo / "landing", local / "landing")
    with monkeypatch.context() as local_settings:
        local_settings.setenv("ML_PLATFORM_DATA_DIR", str(local))
        local_settings.delenv("ML_PLATFORM_STORAGE")
        from ml_platform.definitions import build_definitions

        local_defs = build_definitions()
        with dg.instance_for_test() as local_instance:
            _build_demo(Runner(local_defs, local_instance, local), local_defs, local_instance, days)
    embedded = Runner(local_defs, instance, local)

    for table in compared:
        assert on_s3[table] == _table_digest(embedded, table, without=lineage), table
        assert on_s3[table][0] > 0, table
    # Raw lineage names the same files, by their path under the landing root.
    files = "SELECT DISTINCT source_file FROM raw_events ORDER BY 1"
    assert lake.runner.query(files) == embedded.query(files)

    # The curated table's export: one Parquet file per partition, Hive layout, the warehouse's rows.
    keys = sorted(o["Key"] for o in lake.client.list_objects_v2(Bucket=BUCKET, Prefix="platform/curated/")["Contents"])
    assert keys == [f"platform/curated/user_daily_features/feature_date={d}/data.parquet" for d in days]
    exported = _s3_connection(lake.server).execute(
        f"SELECT * FROM read_parquet('{STORAGE}/curated/user_daily_features/*/*.parquet', hive_partitioning = true)"
    )
    names = [d[0] for d in exported.description]
    rows = exported.fetchall()
    columns = ", ".join(f'"{n}"' for n in names)
    assert sorted(rows, key=repr) == sorted(lake.runner.query(f"SELECT {columns} FROM user_daily_features"), key=repr)
    assert len(rows) == lake.runner.query("SELECT count(*) FROM user_daily_features")[0][0]


def _parquet_bytes(rows: list[dict]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue()


def test_truncated_objects_are_quarantined_with_their_reasons_and_the_rest_of_the_day_ingested(lake):
    row = "e{n},u1,view,2026-11-02T10:00:00Z,p1,1.5\n"
    lake.put(f"events/{DAY}/whole.csv", EVENTS_HEADER + row.format(n=1) + row.format(n=2))
    # Cut short mid-row, as an interrupted copy leaves it.
    lake.put(f"events/{DAY}/cut.csv", EVENTS_HEADER + row.format(n=3) + "e4,u1,vi")
    whole = _parquet_bytes(
        [
            {
                "event_id": f"e{n}",
                "user_id": "u1",
                "event_type": "view",
                "event_time": "2026-11-02T11:00:00Z",
                "product_id": "p1",
                "amount": 2.0,
            }
            for n in range(5, 9)
        ]
    )
    lake.put(f"events/{DAY}/cut.parquet", whole[: len(whole) // 2])
    assert _requested(tick(lake.defs, lake.runner.instance, "events_landing_sensor")) == [DAY]
    lake.runner.run("raw_events", partition=DAY)

    ingested = lake.runner.query("SELECT source_file, count(*) FROM raw_events GROUP BY ALL ORDER BY 1")
    assert ingested == [(f"events/{DAY}/cut.csv", 1), (f"events/{DAY}/whole.csv", 2)]
    quarantined = lake.runner.query("SELECT source_file, status, reason FROM quarantined_files ORDER BY source_file")
    assert quarantined == [
        (
            f"events/{DAY}/cut.csv",
            "partly_read",
            "1 line(s) rejected, see rejected_lines",
        ),
        (
            f"events/{DAY}/cut.parquet",
            "unreadable",
            "truncated Parquet file (no footer): the copy was cut short, land it again",
        ),
    ]
    [(line, excerpt)] = lake.runner.query("SELECT line, excerpt FROM rejected_lines")
    assert (line, excerpt) == (3, "e4,u1,vi")


def test_compressed_utf16_and_windows_1252_objects_are_read_as_from_a_folder(lake):
    """The text a reader needs decoded or decompressed is streamed from the object (ranged GETs
    pinned to its ETag); DuckDB reads a plain or compressed UTF-8 object straight from S3."""
    row = "e{n},u1,view,2026-11-02T10:00:00Z,p1,1.5\n"
    orders = EVENTS_HEADER + row.format(n=1) + "e-bad,u1\n" + row.format(n=2)
    lake.put(f"events/{DAY}/orders.csv.gz", gzip.compress(orders.encode()))
    lake.put(f"events/{DAY}/dump.csv", zstandard.ZstdCompressor().compress((EVENTS_HEADER + row.format(n=3)).encode()))
    unicode = (EVENTS_HEADER + row.format(n=4).replace("u1", "Zoë")).replace(",", "\t").replace("\n", "\r\n")
    lake.put(f"events/{DAY}/unicode_text.csv", b"\xff\xfe" + unicode.encode("utf-16-le"))
    latin = (
        EVENTS_HEADER.upper().encode()
        + row.format(n=5).encode()
        + row.format(n=6).replace("u1", "café").encode("cp1252")
    )
    lake.put(f"events/{DAY}/MOSTLY_UTF8.CSV", latin)
    whole = gzip.compress((EVENTS_HEADER + "".join(row.format(n=n) for n in range(100, 400))).encode())
    lake.put(f"events/{DAY}/cut.csv.gz", whole[: len(whole) // 2])
    assert _requested(tick(lake.defs, lake.runner.instance, "events_landing_sensor")) == [DAY]
    lake.runner.run("raw_events", partition=DAY)

    f = f"events/{DAY}/"
    assert lake.runner.query(
        "SELECT source_file, source_row, record->>'event_id', record->>'user_id' FROM raw_events ORDER BY 1, 2"
    ) == [
        (f + "MOSTLY_UTF8.CSV", 1, "e5", "u1"),
        (f + "MOSTLY_UTF8.CSV", 2, "e6", "café"),
        (f + "dump.csv", 1, "e3", "u1"),
        (f + "orders.csv.gz", 1, "e1", "u1"),
        (f + "orders.csv.gz", 2, "e2", "u1"),
        (f + "unicode_text.csv", 1, "e4", "Zoë"),
    ]
    assert lake.runner.query("SELECT source_file, line, reason FROM rejected_lines") == [
        (f + "orders.csv.gz", 3, "fewer fields than the header's 6"),
    ]
    assert lake.runner.query(
        "SELECT source_file, status, compression, encoding, fallback_lines FROM ingest_ledger ORDER BY 1"
    ) == [
        (f + "MOSTLY_UTF8.CSV", "ingested", None, "utf-8", 1),
        (f + "cut.csv.gz", "unreadable", None, None, 0),
        (f + "dump.csv", "ingested", "zstd", "utf-8", 0),
        (f + "orders.csv.gz", "partly_read", "gzip", "utf-8", 0),
        (f + "unicode_text.csv", "ingested", None, "utf-16-le", 0),
    ]
    assert lake.runner.query("SELECT reason FROM quarantined_files WHERE status = 'unreadable'") == [
        ("truncated gzip archive: the copy was cut short, land it again",)
    ]


def test_an_overwritten_object_is_requested_again_and_replaces_its_rows(lake):
    row = "{id},u1,view,2026-11-02T10:00:00Z,p1,1.5\n"
    lake.put(f"events/{DAY}/a.csv", EVENTS_HEADER + row.format(id="e1") + row.format(id="e2"))
    first = tick(lake.defs, lake.runner.instance, "events_landing_sensor")
    assert _requested(first) == [DAY]
    lake.runner.run("raw_events", partition=DAY)
    assert _requested(tick(lake.defs, lake.runner.instance, "events_landing_sensor", first.cursor)) == []

    # New content under the same key (a corrected export): a new ETag, so a new request.
    lake.put(f"events/{DAY}/a.csv", EVENTS_HEADER + "".join(row.format(id=f"x{n}") for n in range(3)))
    second = tick(lake.defs, lake.runner.instance, "events_landing_sensor", first.cursor)
    [request] = second.run_requests
    assert request.partition_key == DAY and request.run_key != first.run_requests[0].run_key
    lake.runner.run("raw_events", partition=DAY)
    assert lake.runner.query("SELECT record->>'event_id' FROM raw_events ORDER BY 1") == [("x0",), ("x1",), ("x2",)]
    assert _requested(tick(lake.defs, lake.runner.instance, "events_landing_sensor", second.cursor)) == []


def _last_modified(client, key: str) -> dt.datetime:
    return client.head_object(Bucket=BUCKET, Key=f"platform/landing/{key}")["LastModified"]


def test_an_object_landing_in_the_same_second_as_the_cursor_is_not_missed(lake):
    from dagster_aws.s3.sensor import get_objects

    for _attempt in range(5):
        # Start at the beginning of a second, so both objects get the same (whole-second) LastModified.
        time.sleep(1 - time.time() % 1 + 0.02)
        lake.put(f"events/{DAY}/first.csv", EVENTS_HEADER + "e1,u1,view,2026-11-02T10:00:00Z,p1,1.5\n")
        first = tick(lake.defs, lake.runner.instance, "events_landing_sensor")
        lake.put(f"events/{DAY}/second.csv", EVENTS_HEADER + "e2,u1,view,2026-11-02T10:00:00Z,p1,1.5\n")
        if _last_modified(lake.client, f"events/{DAY}/first.csv") == _last_modified(
            lake.client, f"events/{DAY}/second.csv"
        ):
            break
        lake.server.reset()
        lake.client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    else:
        pytest.fail("could not land two objects within one second")
    assert _requested(first) == [DAY]
    # What a cursor of the newest LastModified alone gives: the second object is missed.
    since = _last_modified(lake.client, f"events/{DAY}/first.csv")
    assert get_objects(BUCKET, prefix="platform/landing/events/", since_last_modified=since, client=lake.client) == []

    second = tick(lake.defs, lake.runner.instance, "events_landing_sensor", first.cursor)
    [request] = second.run_requests
    assert (request.partition_key, request.tags["ml_platform/files"]) == (DAY, "1")  # the one new object
    assert _requested(tick(lake.defs, lake.runner.instance, "events_landing_sensor", second.cursor)) == []


def test_credentials_from_secrets_manager_never_reach_the_event_log_or_logs(lake, monkeypatch, caplog, tmp_path):
    """The S3 keys come from a Secrets Manager secret (only its name is configured); a whole
    flow's event log, run tags, sensor cursor and log lines hold neither key."""
    from ml_platform.storage.aws import aws_access

    secret_key_id, secret_key = "AKIAFROMSECRETSMGR01", "secret-from-secrets-manager-never-logged"
    lake.server.client("secretsmanager").create_secret(
        Name="ml-platform/s3",
        SecretString=f'{{"aws_access_key_id": "{secret_key_id}", "aws_secret_access_key": "{secret_key}"}}',
    )
    monkeypatch.setenv("ML_PLATFORM_S3_CREDENTIALS_SECRET", "ml-platform/s3")
    keys = aws_access().credentials()
    assert (keys.key_id, keys.secret) == (secret_key_id, secret_key)
    assert secret_key not in repr(keys)

    _land_demo(tmp_path, days=1)
    from ml_platform.definitions import build_definitions

    defs = build_definitions()
    runner = Runner(defs, lake.runner.instance, lake.runner.data_dir)
    # Everything the platform logs, at every level; boto3's own DEBUG output (which quotes request
    # headers, the key id among them) is off, as in any deployment.
    with caplog.at_level("INFO"), caplog.at_level("DEBUG", logger="ml_platform"):
        _build_demo(runner, defs, runner.instance, ["2026-11-01"])
        cursor = tick(defs, runner.instance, "events_landing_sensor").cursor
    assert runner.query("SELECT count(*) > 0 FROM user_daily_features") == [(True,)]

    recorded = [cursor, caplog.text]
    for record in runner.instance.get_run_records():
        recorded.append(serialize_value(record.dagster_run))
        recorded += [serialize_value(entry) for entry in runner.instance.all_logs(record.dagster_run.run_id)]
    recorded.append(repr(defs.resources))  # what the UI's Resources page shows
    text = "\n".join(recorded)
    assert "lake_export" in text  # the scan sees the runs' metadata
    for secret in (secret_key_id, secret_key, ACCESS_KEY_ID, SECRET_ACCESS_KEY):
        assert secret not in text


def test_a_model_is_saved_whole_in_the_bucket_and_nothing_on_the_workers_disk(lake, data_dir):
    """A run worker's disk goes with it: the model assets save into the storage
    (`storage.artifacts`), read back by `load_model`."""
    from ml_platform.storage import artifacts
    from ml_platform.training.model_asset import load_model, model_path

    fitted = {"coefficients": [0.5, -1.25], "classes": ["stays", "churns"]}
    assert artifacts.save(model_path("churn"), pickle.dumps(fitted)) == f"{STORAGE}/models/churn.pkl"
    listed = lake.client.list_objects_v2(Bucket=BUCKET, Prefix="platform/models/")["Contents"]
    assert [o["Key"] for o in listed] == ["platform/models/churn.pkl"]
    assert load_model("churn") == fitted
    assert not (data_dir / "models").exists()
    with pytest.raises(FileNotFoundError, match=f"{STORAGE}/models/churn_leaky.pkl"):
        load_model("churn_leaky")


def test_storage_setting_is_checked(monkeypatch):
    from ml_platform.storage.location import parse

    assert parse("s3://bucket/a/b/").key("landing", "events/x.csv") == "a/b/landing/events/x.csv"
    assert parse("s3://bucket").url("curated", "t") == "s3://bucket/curated/t"
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        parse("/data/lake")


def test_a_partition_that_fails_its_blocking_checks_is_withheld_and_its_old_export_removed(lake):
    from ml_platform.curated.export import export_partitions
    from ml_platform.storage.aws import aws_access
    from ml_platform.storage.location import parse

    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM (VALUES (DATE '2026-11-01', 1), (DATE '2026-11-02', 2)) v(day, n)")
    location = parse(STORAGE)
    export_partitions(con, location, aws_access(), "t", "day", ["2026-11-01", "2026-11-02"], [])
    assert export_partitions(con, location, aws_access(), "t", "day", ["2026-11-01"], ["2026-11-02"]) == {
        "location": f"{STORAGE}/curated/t/",
        "exported_partitions": 1,
        "withheld_partitions": ["2026-11-02"],
    }
    keys = [o["Key"] for o in lake.client.list_objects_v2(Bucket=BUCKET, Prefix="platform/curated/t/")["Contents"]]
    assert keys == ["platform/curated/t/day=2026-11-01/data.parquet"]
    assert _s3_connection(lake.server).execute(
        f"SELECT day, n FROM read_parquet('{STORAGE}/curated/t/*/*.parquet', hive_partitioning = true)"
    ).fetchall() == [(dt.date(2026, 11, 1), 1)]


# What makes the tables lake tables, on S3, in the PostgreSQL catalog (set aside for the embedded build).
LAKE_SETTINGS = (
    "ML_PLATFORM_PARALLEL_RAW",
    "ML_PLATFORM_LAKE_TABLES",
    "ML_PLATFORM_STORAGE",
    "ML_PLATFORM_CATALOG_URL",
)


@pytest.fixture
def postgres_catalog(monkeypatch):
    """The lake tables' Iceberg catalog in a PostgreSQL server of the test's own."""
    from postgres_server import postgres_server

    with postgres_server(db="lake", user="lake") as pg:
        monkeypatch.setenv(
            "ML_PLATFORM_CATALOG_URL", f"postgresql+psycopg2://{pg.user}:{pg.password}@{pg.host}:{pg.port}/{pg.db}"
        )
        yield pg


def test_lake_tables_on_s3_with_a_postgresql_catalog_equal_the_embedded_ones(
    lake, postgres_catalog, instance, tmp_path, monkeypatch
):
    """The deployed topology of the lake tables: `ML_PLATFORM_PARALLEL_RAW` and
    `ML_PLATFORM_LAKE_TABLES` with the Iceberg catalog in a PostgreSQL server and the files on S3.
    Each raw run's day is a Parquet object of the raw table under the prefix, and so is each clean
    day; the warehouse's tables are views over them (read with httpfs and the iceberg extension by
    every warehouse connection), with the rows the embedded tables hold."""
    days = ["2026-11-01", "2026-11-02"]
    _land_demo(tmp_path, days=2)
    monkeypatch.setenv("ML_PLATFORM_PARALLEL_RAW", "true")
    monkeypatch.setenv("ML_PLATFORM_LAKE_TABLES", "true")
    from ml_platform.definitions import build_definitions

    defs = build_definitions()
    runner = Runner(defs, instance, lake.runner.data_dir)
    runner.run("raw_users", partition=days[0])
    runner.run("raw_users", partition=days[1])
    runner.run("clean_users")
    runs = [runner.run("raw_events", partition=day) for day in days]
    runner.run("clean_events", range_=("2026-10-25", days[-1]))

    keys = sorted(
        o["Key"]
        for o in lake.client.list_objects_v2(Bucket=BUCKET, Prefix="platform/lake/raw_events/data/")["Contents"]
    )
    # One object per day, named by the run that wrote it.
    assert [key.rsplit("/", 1)[0] for key in keys] == [
        f"platform/lake/raw_events/data/landing_date={day}" for day in days
    ]
    for key, run in zip(keys, runs, strict=True):
        assert key.rsplit("/", 1)[1].startswith(f"{run.run_id}-") and key.endswith(".parquet")
    # The tables' metadata is on S3 beside their data, and the PostgreSQL catalog points at it.
    from ml_platform.lakehouse.tables import load_table

    for table in ("raw_events", "clean_events"):
        assert load_table(table).metadata_location.startswith(f"{STORAGE}/lake/{table}/metadata/")
    from ml_platform.lakehouse.catalog import catalog
    from ml_platform.lakehouse.housekeeping import lake_tables

    assert catalog().engine.url.get_backend_name() == "postgresql"
    assert lake_tables() == [
        "clean_events",
        "clean_users",
        "clean_users__snapshots",
        "ingest_ledger",
        "partition_profiles",
        "quarantine_events",
        "quarantine_users",
        "quarantined_files",
        "raw_events",
        "raw_users",
        "rejected_lines",
    ]
    lake_settings = {name: os.environ.pop(name) for name in LAKE_SETTINGS}
    local = tmp_path / "local"
    shutil.copytree(tmp_path / "demo" / "landing", local / "landing")
    monkeypatch.setenv("ML_PLATFORM_DATA_DIR", str(local))
    local_defs = build_definitions()
    with dg.instance_for_test() as local_instance:
        embedded = Runner(local_defs, local_instance, local)
        embedded.run("raw_users", range_=(days[0], days[-1]))
        embedded.run("clean_users")
        embedded.run("raw_events", range_=(days[0], days[-1]))
        embedded.run("clean_events", range_=("2026-10-25", days[-1]))
    os.environ.update(lake_settings)
    for table in ("raw_events", "clean_events"):
        on_s3 = _table_digest(runner, table, without=("ingested_at",))
        assert on_s3 == _table_digest(embedded, table, without=("ingested_at",)) and on_s3[0] > 0, table


def test_credentials_from_an_aws_profile(lake, tmp_path, monkeypatch):
    """No keys in the environment: AWS_PROFILE names a profile of the shared credentials file, and
    the landing sensor lists the bucket with it."""
    from ml_platform.storage.aws import aws_access

    credentials = tmp_path / "aws_credentials"
    credentials.write_text(
        "[lake-reader]\naws_access_key_id = AKIAPROFILEKEY000001\naws_secret_access_key = profile-secret-0001\n"
    )
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_PROFILE", "lake-reader")
    keys = aws_access().credentials()
    assert (keys.key_id, keys.secret) == ("AKIAPROFILEKEY000001", "profile-secret-0001")
    lake.put(f"events/{DAY}/a.csv", EVENTS_HEADER + "e1,u1,view,2026-11-02T10:00:00Z,p1,1.5\n")
    assert _requested(tick(lake.defs, lake.runner.instance, "events_landing_sensor")) == [DAY]
