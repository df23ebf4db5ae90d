"""The production instance configuration (`deploy/dagster.yaml`) loads and works: run and event
storage in a real PostgreSQL server (dagster-postgres), Dagster's queued coordinator with its
limits from the environment, step logs on S3 and dagster-aws's ECS run launcher finding its task
definition on a local ECS endpoint (moto's server, real HTTP). The same topology on one machine
(`deploy_topology.py`, `make scale-demo`) differs from it in its run launcher alone.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
import yaml

from conftest import USERS_CSV, Runner, write_landing
from deploy_topology import DEPLOY_CONFIG, LAUNCHER, one_machine_instance
from postgres_server import postgres_server
from s3_server import REGION, local_s3

LOGS_BUCKET = "compute-logs"


@pytest.fixture(scope="module")
def servers():
    with postgres_server(db="dagster", user="dagster") as pg, local_s3() as aws:
        aws.client().create_bucket(Bucket=LOGS_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield pg, aws


def _deployment(pg, aws, home: Path, db: str, max_runs: int, config: str | None = None) -> dict[str, str]:
    """A DAGSTER_HOME holding deploy/dagster.yaml (or `config`), and the environment a deployment sets."""
    home.mkdir()
    if config is None:
        shutil.copy(DEPLOY_CONFIG, home / "dagster.yaml")
    else:
        (home / "dagster.yaml").write_text(config)
    return {
        **pg.env("DAGSTER_PG"),
        "DAGSTER_PG_DB": db,
        "DAGSTER_HOME": str(home),
        "ML_PLATFORM_MAX_CONCURRENT_RUNS": str(max_runs),
        "DAGSTER_ECS_TASK_DEFINITION": "ml-platform-run",
        "DAGSTER_COMPUTE_LOGS_BUCKET": LOGS_BUCKET,
        # Every AWS client (ECS, EC2, Secrets Manager, logs, the step logs' S3) talks to the local server.
        "AWS_ENDPOINT_URL": aws.endpoint,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "AKIALOCALTESTKEY0002",
        "AWS_SECRET_ACCESS_KEY": "local-test-secret-0002",
    }


def test_the_production_instance_stores_runs_in_postgres_and_launches_on_ecs(servers, data_dir, tmp_path, monkeypatch):
    from dagster_aws.ecs import EcsRunLauncher
    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    pg, aws = servers
    ecs = aws.client("ecs")
    arn = ecs.register_task_definition(
        family="ml-platform-run", containerDefinitions=[{"name": "run", "image": "ml-platform:latest", "memory": 2048}]
    )["taskDefinition"]["taskDefinitionArn"]
    for name, value in _deployment(pg, aws, tmp_path / "dagster_home", pg.db, 2).items():
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
        # Each step's logs are on S3, under the run, where the webserver reads them.
        assert isinstance(instance.compute_log_manager, S3ComputeLogManager)
        logs = aws.client().list_objects_v2(Bucket=LOGS_BUCKET, Prefix="dagster-compute-logs/")["Contents"]
        assert {run_id for run_id in run_ids if any(run_id in o["Key"] for o in logs)} == set(run_ids)
    assert len(run_ids) == 2

    # Another process (here: a new instance on the same configuration) sees the same runs.
    with dg.DagsterInstance.get() as again:
        assert [r.run_id for r in again.get_runs()] == run_ids


def test_the_production_instance_lets_one_warehouse_writer_run_at_a_time(servers, data_dir, tmp_path, monkeypatch):
    """DuckDB allows one writing process per file: on a deployment too, the `duckdb` pool has one slot."""
    from ml_platform.definitions import build_definitions
    from ml_platform.warehouse.resource import WAREHOUSE_POOL

    pg, aws = servers
    # A database of its own: the test above counts the runs in its storage.
    pg.sql("CREATE DATABASE dagster_pools OWNER dagster;", db="postgres")
    for name, value in _deployment(pg, aws, tmp_path / "dagster_home", "dagster_pools", 6).items():
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


def test_the_topology_on_one_machine_is_the_deployed_one_with_runs_in_folders_of_their_own(
    servers, tmp_path, monkeypatch
):
    """`make scale-demo`'s instance: deploy/dagster.yaml, every block as deployed but the run
    launcher, which starts each run as a fresh process in a new folder of its own."""
    from ml_platform.runs.launcher import LocalRunLauncher

    pg, aws = servers
    config = one_machine_instance(tmp_path / "runs")
    deployed = yaml.safe_load(DEPLOY_CONFIG.read_text())
    assert {k: v for k, v in yaml.safe_load(config).items() if k != LAUNCHER} == {
        k: v for k, v in deployed.items() if k != LAUNCHER
    }
    pg.sql("CREATE DATABASE dagster_one_machine OWNER dagster;", db="postgres")
    for name, value in _deployment(pg, aws, tmp_path / "dagster_home", "dagster_one_machine", 4, config).items():
        monkeypatch.setenv(name, value)
    with dg.DagsterInstance.get() as instance:
        launcher = instance.run_launcher
        assert isinstance(launcher, LocalRunLauncher)
        assert launcher.inst_data.config_dict == {"fork_runs": False, "run_directories": str(tmp_path / "runs")}
        assert instance.run_coordinator.get_run_queue_config().max_concurrent_runs == 4
