"""Shared fixtures: an isolated data folder and warehouse per test, and in-process runs."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from helpers import TEST_PSEUDONYM_KEY


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ML_PLATFORM_DATA_DIR (landing files + warehouse) for one test."""
    root = tmp_path / "data"
    (root / "landing").mkdir(parents=True)
    monkeypatch.setenv("ML_PLATFORM_DATA_DIR", str(root))
    monkeypatch.delenv("ML_PLATFORM_WAREHOUSE", raising=False)
    return root


@pytest.fixture(autouse=True)
def _test_pseudonym_key(monkeypatch: pytest.MonkeyPatch):
    """Every test, and every process it starts, pseudonymizes with the tests' key (never the
    developer's): helpers.pseudonym computes the same values."""
    monkeypatch.setenv("ML_PLATFORM_PSEUDONYM_KEY", TEST_PSEUDONYM_KEY)


@pytest.fixture(autouse=True)
def _no_configured_sources(monkeypatch: pytest.MonkeyPatch):
    """Sources configured on the developer's machine must not leak into tests (autouse fixtures
    run first, so a test's own fixtures can still set them)."""
    for name in [n for n in os.environ if n.startswith(("ML_PLATFORM_PG_", "ML_PLATFORM_WEATHER_"))]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("ML_PLATFORM_KAFKA_BOOTSTRAP_SERVERS", raising=False)


@pytest.fixture
def defs(data_dir: Path) -> dg.Definitions:
    from ml_platform.definitions import build_definitions

    return build_definitions()


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


class Runner:
    """Materializes assets in process, one partition or a single-run range, like the UI does."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance, data_dir: Path):
        self.defs, self.instance, self.data_dir = defs, instance, data_dir

    def run(
        self,
        *asset_names: str,
        partition: str | None = None,
        range_: tuple[str, str] | None = None,
        expect_success: bool = True,
        tags: dict[str, str] | None = None,
    ) -> dg.ExecuteInProcessResult:
        tags = dict(tags or {})
        if range_:
            tags |= {"dagster/asset_partition_range_start": range_[0], "dagster/asset_partition_range_end": range_[1]}
        result = dg.materialize(
            [self.defs.get_assets_def(name) for name in asset_names],
            instance=self.instance,
            resources=self.defs.resources,
            partition_key=partition,
            tags=tags,
            raise_on_error=False,
        )
        assert result.success is expect_success, [
            e.message for e in result.all_events if e.event_type_value in ("STEP_FAILURE", "RUN_FAILURE")
        ]
        return result

    def query(self, sql: str, params=None) -> list[tuple]:
        con = duckdb.connect(str(self.data_dir / "warehouse.duckdb"), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()


def source_runner(spec, instance: dg.DagsterInstance, data_dir: Path, extra_assets=()) -> Runner:
    """A Runner over one source's assets built from `spec` (e.g. a variant of a real source),
    plus `extra_assets`, on the test's warehouse."""
    from ml_platform import settings
    from ml_platform.definitions import source_definitions
    from ml_platform.warehouse import Warehouse

    defs = dg.Definitions(
        assets=[*source_definitions(spec).assets, *extra_assets],
        resources={"warehouse": Warehouse(database=str(settings.warehouse_path()))},
    )
    return Runner(defs, instance, data_dir)


@pytest.fixture
def runner(defs, instance, data_dir) -> Runner:
    return Runner(defs, instance, data_dir)


@pytest.fixture
def ticker(defs, instance):
    """The automation sensor's evaluations, tick after tick (see helpers.Ticker)."""
    from helpers import Ticker

    return Ticker(defs, instance)


def write_landing(data_dir: Path, source: str, landing_date: str | None, name: str, text: str) -> Path:
    folder = data_dir / "landing" / source / (landing_date or "")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


USERS_CSV = "user_id,signup_date,country,plan\nu1,2026-10-01,DE,free\nu2,2026-10-15,US,pro\n"


def days(first: str, last: str) -> list[str]:
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    return [(start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
