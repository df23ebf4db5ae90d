"""The production instance configuration (`deploy/dagster.yaml`) loads and works: run and event
storage in a real PostgreSQL server (dagster-postgres), Dagster's queued coordinator with its
limits from the environment, and dagster-aws's ECS run launcher finding its task definition on a
local ECS endpoint (moto's server, real HTTP).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from conftest import USERS_CSV, Runner, write_landing
from postgres_server import postgres_server
from s3_server import REGION, local_s3

DEPLOY_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "dagster.yaml"


@pytest.fixture(scope="module")
def servers():
    with postgres_server(db="dagster", user="dagster") as pg, local_s3() as aws:
        yield pg, aws


def test_the_production_instance_stores_runs_in_postgres_and_launches_on_ecs(servers, data_dir, tmp_path, monkeypatch):
    from dagster_aws.ecs import EcsRunLauncher
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    pg, aws = servers
    ecs = aws.client("ecs")
    arn = ecs.register_task_definition(
        family="ml-platform-run", containerDefinitions=[{"name": "run", "image": "ml-platform:latest", "memory": 2048}]
    )["taskDefinition"]["taskDefinitionArn"]
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY_CONFIG, home / "dagster.yaml")
    for name, value in {
        **pg.env("DAGSTER_PG"),
        "DAGSTER_PG_DB": pg.db,
        "DAGSTER_HOME": str(home),
        "ML_PLATFORM_MAX_CONCURRENT_RUNS": "2",
        "DAGSTER_ECS_TASK_DEFINITION": "ml-platform-run",
        # Every AWS client (ECS, EC2, Secrets Manager, logs) talks to the local server.
        "AWS_ENDPOINT_URL": aws.endpoint,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "AKIALOCALTESTKEY0002",
        "AWS_SECRET_ACCESS_KEY": "local-test-secret-0002",
    }.items():
        monkeypatch.setenv(name, value)

    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        coordinator = instance.run_coordinator
        assert isinstance(coordinator, dg.QueuedRunCoordinator)
        assert coordinator.get_run_queue_config().max_concurrent_runs == 2
        launcher = instance.run_launcher
        assert isinstance(launcher, EcsRunLauncher)
        assert launcher.task_definition == arn

        write_landing(data_dir, "users", "2026-11-01", "users.csv", USERS_CSV)
        from ml_platform.definitions import build_definitions

        defs = build_definitions()
        Runner(defs, instance, data_dir).run("raw_users", partition="2026-11-01")
        Runner(defs, instance, data_dir).run("clean_users")
        [latest] = instance.get_runs(limit=1)
        assert latest.status == dg.DagsterRunStatus.SUCCESS
        materialization = instance.get_latest_materialization_event(dg.AssetKey("clean_users"))
        assert materialization is not None and materialization.run_id == latest.run_id
        run_ids = [r.run_id for r in instance.get_runs()]
    assert len(run_ids) == 2

    # Another process (here: a new instance on the same configuration) sees the same runs.
    with dg.DagsterInstance.get() as again:
        assert [r.run_id for r in again.get_runs()] == run_ids


def test_the_production_instance_lets_one_warehouse_writer_run_at_a_time(servers, data_dir, tmp_path, monkeypatch):
    """DuckDB allows one writing process per file: on a deployment too, the `duckdb` pool has one slot."""
    from ml_platform.definitions import build_definitions
    from ml_platform.warehouse.resource import WAREHOUSE_POOL

    pg, _ = servers
    # A database of its own: the test above counts the runs in its storage.
    pg.sql("CREATE DATABASE dagster_pools OWNER dagster;", db="postgres")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY_CONFIG, home / "dagster.yaml")
    for name, value in {
        **pg.env("DAGSTER_PG"),
        "DAGSTER_PG_DB": "dagster_pools",
        "DAGSTER_HOME": str(home),
        "ML_PLATFORM_MAX_CONCURRENT_RUNS": "6",
        "DAGSTER_ECS_TASK_DEFINITION": "ml-platform-run",
    }.items():
        monkeypatch.setenv(name, value)

    # The warehouse's writers are in the pool (every asset's pool: test_definitions.py's snapshot).
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    assert {frozenset(graph.get(dg.AssetKey(a)).pools) for a in ("raw_users", "clean_events", "latest_features")} == {
        frozenset({WAREHOUSE_POOL})
    }

    with dg.DagsterInstance.get() as instance:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        # The run limits from the environment still hold beside it.
        assert instance.run_coordinator.get_run_queue_config().max_concurrent_runs == 6
        # A run's step claiming the pool for the first time gives it the default limit (in the
        # storage every machine shares): one slot.
        write_landing(data_dir, "users", "2026-11-01", "users.csv", USERS_CSV)
        Runner(defs, instance, data_dir).run("raw_users", partition="2026-11-01")
        assert instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).slot_count == 1
