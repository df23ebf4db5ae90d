"""The PostgreSQL source kind against a real server: change sensor, incremental raw, clean, secrets, faults."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import pytest
from dagster._serdes import serialize_value

from helpers import run_metadata
from helpers import tick as sensor_tick
from ml_platform.ingestion.postgres import PostgresSourceSpec
from ml_platform.ingestion.postgres import connection as postgres_connection
from ml_platform.ingestion.postgres import extract as postgres_extract
from postgres_server import TRANSACTIONS_SCHEMA as SCHEMA
from postgres_server import PostgresServer, postgres_server

RAW, CLEAN, SENSOR = "raw_transactions", "clean_transactions", "transactions_change_sensor"


# Creation days in UTC: t1, t3 -> 11-01; t2, t5 -> 11-02; t4 -> 11-03 (offsets move t2 and t3 across midnight).
SEED = """
INSERT INTO public.transactions VALUES
  ('t1', 'u1', 10.50, 'EUR', 'completed', '2026-11-01 09:00:00+00', '2026-11-01 09:00:00+00', NULL),
  ('t2', 'u2', 20.00, 'USD', 'pending',   '2026-11-01 23:30:00-02', '2026-11-02 01:30:00+00', NULL),
  ('t3', 'u1',  5.00, 'GBP', 'completed', '2026-11-02 00:30:00+02', '2026-11-01 22:30:00+00', NULL),
  ('t4', 'u3', 99.99, 'EUR', 'failed',    '2026-11-03 12:00:00+05:30', '2026-11-03 06:30:00+00', NULL),
  ('t5', 'u2', 42.00, 'USD', 'completed', '2026-11-02 10:00:00Z', '2026-11-02 10:05:00Z', NULL);
"""

CHANGES = """
UPDATE public.transactions SET status = 'refunded', updated_at = '2026-11-04 08:00:00+00' WHERE transaction_id = 't1';
UPDATE public.transactions SET deleted_at = '2026-11-04 08:05:00+00', updated_at = '2026-11-04 08:05:00+00'
  WHERE transaction_id = 't5';
INSERT INTO public.transactions VALUES
  ('t6', 'u4', 7.25, 'GBP', 'pending', '2026-11-04 07:00:00+01', '2026-11-04 07:00:00+01', NULL);
"""

CLEAN_COLUMNS = (
    "transaction_id, user_id, amount, currency, status, created_at, transaction_date, updated_at, deleted_at"
)


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


@pytest.fixture(scope="module")
def server():
    with postgres_server() as pg:
        yield pg


@pytest.fixture
def pg(server: PostgresServer) -> PostgresServer:
    if not (server.data_dir / "postmaster.pid").exists():
        server.start()
    server.sql(SCHEMA + SEED)
    return server


@pytest.fixture
def defs(data_dir, pg, monkeypatch):
    """The code location, built after the connection variables are set (as a deployment would)."""
    for name, value in pg.env().items():
        monkeypatch.setenv(name, value)
    from ml_platform.definitions import build_definitions

    return build_definitions()


def tick(defs, instance, cursor):
    return sensor_tick(defs, instance, SENSOR, cursor)


def requested(data) -> list[tuple[str, str]]:
    return [(r.partition_key, r.run_key) for r in data.run_requests]


def clean_rows(runner) -> list[tuple]:
    return runner.query(f"SELECT {CLEAN_COLUMNS} FROM {CLEAN} ORDER BY transaction_id")


def raw_count(runner) -> int:
    return runner.query(f"SELECT count(*) FROM {RAW}")[0][0]


def materialization(result, asset: str):
    """The asset's run-level metadata (a single-run range reports it on each partition)."""
    return run_metadata(result, asset)


def step_error(result):
    """The asset's own exception as Dagster recorded it (under Dagster's step-execution wrapper)."""
    error = result.get_step_failure_events()[0].step_failure_data.error.cause
    assert error.cls_name == "PostgresSourceError", error
    # The driver's unmasked exception is neither the cause nor the context.
    assert error.cause is None and error.context is None
    return error


def event_log_text(instance: dg.DagsterInstance) -> str:
    """Everything the instance recorded about every run: events, run config, tags."""
    parts = []
    for run in instance.get_runs():
        parts.append(serialize_value(run))
        parts += [serialize_value(e) for e in instance.all_logs(run.run_id)]
    return "\n".join(parts)


EXPECTED_FIRST = [
    ("t1", "u1", 10.5, "EUR", "completed", ts("2026-11-01 09:00"), d("2026-11-01"), ts("2026-11-01 09:00"), None),
    ("t2", "u2", 20.0, "USD", "pending", ts("2026-11-02 01:30"), d("2026-11-02"), ts("2026-11-02 01:30"), None),
    ("t3", "u1", 5.0, "GBP", "completed", ts("2026-11-01 22:30"), d("2026-11-01"), ts("2026-11-01 22:30"), None),
    ("t4", "u3", 99.99, "EUR", "failed", ts("2026-11-03 06:30"), d("2026-11-03"), ts("2026-11-03 06:30"), None),
    ("t5", "u2", 42.0, "USD", "completed", ts("2026-11-02 10:00"), d("2026-11-02"), ts("2026-11-02 10:05"), None),
]


def ingest_initial(runner, defs, instance) -> str:
    data = tick(defs, instance, None)
    assert requested(data) == [
        ("2026-11-01", "transactions:2026-11-01:2026-11-01T22:30:00.000000Z"),
        ("2026-11-02", "transactions:2026-11-02:2026-11-02T10:05:00.000000Z"),
        ("2026-11-03", "transactions:2026-11-03:2026-11-03T06:30:00.000000Z"),
    ]
    for partition, _ in requested(data):
        runner.run(RAW, CLEAN, partition=partition)
    return data.cursor


def test_spec_validation():
    from ml_platform.declarations.sources.transactions import SPEC

    assert (SPEC.version_column, SPEC.updated_at_column, SPEC.overlap_minutes) == ("updated_at", "updated_at", 10)
    assert SPEC.env_vars["password"] == "ML_PLATFORM_PG_PASSWORD"
    base = {
        k: getattr(SPEC, k)
        for k in (
            "name",
            "description",
            "owner",
            "contract",
            "key_columns",
            "event_time_column",
            "partition_column",
            "updated_at_column",
        )
    }
    with pytest.raises(ValueError, match="schema-qualified"):
        PostgresSourceSpec(**{**base, "table": "transactions"})
    with pytest.raises(ValueError, match="schema-qualified"):
        PostgresSourceSpec(**{**base, "table": "public.tx; DROP TABLE x"})
    with pytest.raises(ValueError, match="version_column"):
        PostgresSourceSpec(**{**base, "table": "public.t", "version_column": "created_at"})
    with pytest.raises(ValueError, match="overlap_minutes"):
        PostgresSourceSpec(**{**base, "table": "public.t", "overlap_minutes": -1})
    with pytest.raises(ValueError, match="connection_env_prefix"):
        PostgresSourceSpec(**{**base, "table": "public.t", "connection_env_prefix": "bad prefix"})
    with pytest.raises(ValueError, match="event_time_column"):
        PostgresSourceSpec(**{**base, "table": "public.t", "event_time_column": None, "partition_column": None})


def test_error_text_is_masked():
    resource = postgres_connection.PostgresResource(
        host="db.internal", port=5432, db="shop", user="u", password="s3 \"cr\\e't"
    )
    driver_error = (
        f'IO Error: Unable to connect to Postgres at "{resource.conninfo()}": FATAL: password '
        f"authentication failed; raw {resource.password}; password=hunter2"
    )
    masked = resource.mask(driver_error)
    assert masked == "FATAL: password authentication failed; raw ***; password=***"
    assert "s3" not in resource.mask(f'at "{resource.conninfo()}"')


def test_definitions_shape(defs):
    graph = defs.resolve_asset_graph()
    raw = graph.get(dg.AssetKey(RAW))
    assert (raw.group_name, raw.pools, raw.backfill_policy) == ("raw", {"duckdb"}, dg.BackfillPolicy.single_run())
    assert sorted(k.name for k in graph.get_check_keys_for_assets({raw.key})) == ["landing_freshness", "schema"]
    assert graph.get(dg.AssetKey(CLEAN)).parent_keys == {raw.key}
    sensor = defs.get_sensor_def(SENSOR)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    resource = defs.resources["transactions_postgres"]
    assert isinstance(resource, postgres_connection.PostgresResource)
    # Only variable names are held by the definitions, never values.
    assert resource.password.env_var_name == "ML_PLATFORM_PG_PASSWORD"


def test_incremental_updates_soft_deletes_and_idempotency(runner, defs, instance, pg):
    cursor = ingest_initial(runner, defs, instance)
    assert raw_count(runner) == 5
    assert clean_rows(runner) == EXPECTED_FIRST
    assert runner.query(
        "SELECT source, landing_date, source_file, format, row_count, schema_version FROM ingest_ledger"
        " ORDER BY landing_date"
    ) == [
        ("transactions", d("2026-11-01"), "postgres:public.transactions@initial", "postgres", 2, "v1"),
        ("transactions", d("2026-11-02"), "postgres:public.transactions@initial", "postgres", 2, "v1"),
        ("transactions", d("2026-11-03"), "postgres:public.transactions@initial", "postgres", 1, "v1"),
    ]
    # Raw keeps the source's values as text; timestamps with time zone as UTC.
    assert json.loads(runner.query(f"SELECT record FROM {RAW} WHERE record->>'transaction_id' = 't2'")[0][0]) == {
        "transaction_id": "t2",
        "user_id": "u2",
        "amount": "20.00",
        "currency": "USD",
        "status": "pending",
        "created_at": "2026-11-02T01:30:00.000000+00:00",
        "updated_at": "2026-11-02T01:30:00.000000+00:00",
        "deleted_at": None,
    }

    # Nothing changed: no request, and re-running a day appends nothing.
    unchanged = tick(defs, instance, cursor)
    assert (
        requested(unchanged) == [] and unchanged.skip_message == "transactions: no new changes in public.transactions"
    )
    rerun = runner.run(RAW, partition="2026-11-02")
    assert materialization(rerun, RAW)["versions_appended"] == 0
    assert raw_count(runner) == 5

    pg.sql(CHANGES)
    changed = tick(defs, instance, unchanged.cursor)
    assert requested(changed) == [
        ("2026-11-01", "transactions:2026-11-01:2026-11-04T08:00:00.000000Z"),
        ("2026-11-02", "transactions:2026-11-02:2026-11-04T08:05:00.000000Z"),
        ("2026-11-04", "transactions:2026-11-04:2026-11-04T06:00:00.000000Z"),
    ]
    results = {p: runner.run(RAW, CLEAN, partition=p) for p, _ in requested(changed)}
    assert {p: materialization(r, RAW)["versions_appended"] for p, r in results.items()} == {
        "2026-11-01": 1,
        "2026-11-02": 1,
        "2026-11-04": 1,
    }
    assert raw_count(runner) == 8
    clean_02 = materialization(results["2026-11-02"], CLEAN)
    assert (clean_02["deleted_at_source"], clean_02["duplicates_removed"], clean_02["accepted_rows"]) == (1, 1, 1)
    assert materialization(results["2026-11-01"], CLEAN)["duplicates_removed"] == 1
    expected = [
        ("t1", "u1", 10.5, "EUR", "refunded", ts("2026-11-01 09:00"), d("2026-11-01"), ts("2026-11-04 08:00"), None),
        EXPECTED_FIRST[1],
        EXPECTED_FIRST[2],
        EXPECTED_FIRST[3],
        ("t6", "u4", 7.25, "GBP", "pending", ts("2026-11-04 06:00"), d("2026-11-04"), ts("2026-11-04 06:00"), None),
    ]
    assert clean_rows(runner) == expected
    # The soft-deleted version is in raw (history kept), just not in clean.
    assert runner.query(
        f"SELECT record->>'deleted_at' FROM {RAW} WHERE record->>'transaction_id' = 't5' ORDER BY record->>'updated_at'"
    ) == [(None,), ("2026-11-04T08:05:00.000000+00:00",)]

    # t1 (08:00) is within the overlap of the day's mark: read again, not appended again.
    overlap_rerun = materialization(runner.run(RAW, partition="2026-11-01"), RAW)
    assert (overlap_rerun["rows_pulled"], overlap_rerun["versions_appended"], overlap_rerun["already_present"]) == (
        1,
        0,
        1,
    )
    # ...and a row committed late with an updated_at inside the overlap is still caught.
    pg.sql(
        "INSERT INTO public.transactions VALUES ('t7', 'u5', 1.00, 'EUR', 'completed',"
        " '2026-11-01 12:00:00+00', '2026-11-04 07:55:00+00', NULL)"
    )
    late = materialization(runner.run(RAW, CLEAN, partition="2026-11-01"), RAW)
    assert (late["rows_pulled"], late["versions_appended"]) == (2, 1)
    assert raw_count(runner) == 9
    assert runner.query(f"SELECT transaction_id FROM {CLEAN} WHERE transaction_date = '2026-11-01' ORDER BY 1") == [
        ("t1",),
        ("t3",),
        ("t7",),
    ]

    # The versions changed within the overlap are not requested again.
    again = tick(defs, instance, changed.cursor)
    assert requested(again) == []
    # A whole-range single-run backfill is idempotent too.
    backfill = runner.run(RAW, range_=("2026-11-01", "2026-11-04"))
    assert materialization(backfill, RAW)["versions_appended"] == 0
    assert raw_count(runner) == 9
    assert runner.query(
        f"SELECT count(*), count(DISTINCT (record->>'transaction_id', record->>'updated_at')) FROM {RAW}"
    ) == [(9, 9)]

    # The password appears nowhere the instance recorded.
    log = event_log_text(instance)
    assert "transactions" in log and pg.password not in log


def test_missing_variable_skips_naming_it(defs, instance, monkeypatch):
    monkeypatch.delenv("ML_PLATFORM_PG_PASSWORD")
    data = tick(defs, instance, None)
    assert data.run_requests == []
    assert data.skip_message == (
        "transactions: PostgreSQL source not configured: environment variable(s) ML_PLATFORM_PG_PASSWORD not set"
    )
    monkeypatch.delenv("ML_PLATFORM_PG_HOST")
    assert "ML_PLATFORM_PG_HOST, ML_PLATFORM_PG_PASSWORD" in tick(defs, instance, None).skip_message


def test_missing_variable_fails_the_asset_naming_it(runner, monkeypatch):
    monkeypatch.delenv("ML_PLATFORM_PG_USER")
    # Dagster resolves the EnvVar before the run starts and names the variable.
    with pytest.raises(dg.DagsterInvalidConfigError, match='"ML_PLATFORM_PG_USER" which is not set'):
        runner.run(RAW, partition="2026-11-01", expect_success=False)


def test_wrong_password_fails_without_revealing_it(runner, defs, instance, pg, monkeypatch):
    wrong = "wr0ng 'Secret-" + pg.password[-8:-2]
    monkeypatch.setenv("ML_PLATFORM_PG_PASSWORD", wrong)
    result = runner.run(RAW, partition="2026-11-01", expect_success=False)
    messages = [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    failure = step_error(result)
    assert "password authentication failed" in failure.message
    assert f"cannot connect to PostgreSQL at 127.0.0.1:{pg.port}/shop" in failure.message
    data = tick(defs, instance, None)
    assert data.run_requests == [] and "password authentication failed" in data.skip_message
    log = event_log_text(instance) + "\n".join(messages) + data.skip_message
    assert wrong not in log and pg.password not in log


def test_connection_refused_then_restart_succeeds_without_duplicates(runner, defs, instance, pg):
    cursor = ingest_initial(runner, defs, instance)
    pg.sql(CHANGES)
    pg.stop()
    try:
        data = tick(defs, instance, cursor)
        assert data.run_requests == []
        assert data.skip_message == (
            f"transactions: PostgreSQL server at 127.0.0.1:{pg.port}/shop unreachable or refusing the connection: "
            f'connection to server at "127.0.0.1", port {pg.port} failed: Connection refused'
        )
        failed = runner.run(RAW, CLEAN, partition="2026-11-01", expect_success=False)
        error = step_error(failed)
        assert f"cannot connect to PostgreSQL at 127.0.0.1:{pg.port}/shop" in error.message
        assert pg.password not in error.message
        assert raw_count(runner) == 5
    finally:
        pg.start()
    retry = tick(defs, instance, cursor)
    assert [p for p, _ in requested(retry)] == ["2026-11-01", "2026-11-02", "2026-11-04"]
    for partition, _ in requested(retry):
        runner.run(RAW, CLEAN, partition=partition)
    assert raw_count(runner) == 8
    assert [r[:5] for r in clean_rows(runner)] == [
        ("t1", "u1", 10.5, "EUR", "refunded"),
        ("t2", "u2", 20.0, "USD", "pending"),
        ("t3", "u1", 5.0, "GBP", "completed"),
        ("t4", "u3", 99.99, "EUR", "failed"),
        ("t6", "u4", 7.25, "GBP", "pending"),
    ]
    assert pg.password not in event_log_text(instance)


def test_server_stopping_mid_extraction_rolls_back_and_retry_is_exact(runner, defs, instance, pg, monkeypatch):
    ingest_initial(runner, defs, instance)
    pg.sql(CHANGES)
    original = postgres_extract.masked_query

    def stop_before_reading(resource, spec, action, what):
        # Connected and described: the server goes away just before the rows are read.
        if what == "reading":
            pg.stop()
        return original(resource, spec, action, what)

    monkeypatch.setattr(postgres_extract, "masked_query", stop_before_reading)
    try:
        failed = runner.run(RAW, range_=("2026-11-01", "2026-11-04"), expect_success=False)
    finally:
        monkeypatch.setattr(postgres_extract, "masked_query", original)
        pg.start()
    error = step_error(failed)
    assert "reading public.transactions at 127.0.0.1" in error.message and pg.password not in error.message
    assert raw_count(runner) == 5
    assert runner.query("SELECT count(*) FROM ingest_ledger")[0][0] == 3

    # A fault after some days were written (here: recording the second day's batch) rolls back them all.
    real_record_batch = postgres_extract.record_batch
    calls = []

    def fail_on_second_day(*args, **kwargs):
        calls.append(kwargs["landing_date"])
        if len(calls) == 2:
            raise ConnectionError("connection lost")
        return real_record_batch(*args, **kwargs)

    monkeypatch.setattr(postgres_extract, "record_batch", fail_on_second_day)
    runner.run(RAW, range_=("2026-11-01", "2026-11-04"), expect_success=False)
    monkeypatch.setattr(postgres_extract, "record_batch", real_record_batch)
    assert calls == [d("2026-11-01"), d("2026-11-02")]
    assert raw_count(runner) == 5

    ok = runner.run(RAW, CLEAN, range_=("2026-11-01", "2026-11-04"))
    assert materialization(ok, RAW)["versions_appended"] == 3
    assert raw_count(runner) == 8
    assert [r[0] for r in clean_rows(runner)] == ["t1", "t2", "t3", "t4", "t6"]
    again = runner.run(RAW, range_=("2026-11-01", "2026-11-04"))
    assert materialization(again, RAW)["versions_appended"] == 0
    assert raw_count(runner) == 8
