"""Shared fixtures: an isolated data folder and warehouse per test, and in-process runs."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from helpers import TEST_PSEUDONYM_KEY

# The suite's temp files (tmp_path, Dagster's test instances, dagster dev's DAGSTER_HOME, DuckDB
# spill folders) go to memory when the machine has room there: every in-process run commits
# Dagster's SQLite event log a few hundred times and DuckDB checkpoints its file, and on a disk
# shared with other work each of those fsyncs waits (measured: 4 schema-evolution tests 55 s on
# /tmp, 27 s on /dev/shm). Killing a process leaves a tmpfs file as it leaves a disk file, so the
# crash tests see the same. An explicit TMPDIR is kept as it is.
MEMORY_TEMP_ROOT = Path("/dev/shm")
MEMORY_TEMP_MIN_FREE = 8 * 2**30  # bytes: a few whole runs' temp folders (pytest keeps the last 3)


def _memory_temp_root() -> Path | None:
    try:
        stats = os.statvfs(MEMORY_TEMP_ROOT)
    except OSError:
        return None
    if stats.f_bavail * stats.f_frsize < MEMORY_TEMP_MIN_FREE or not os.access(MEMORY_TEMP_ROOT, os.W_OK | os.X_OK):
        return None
    return MEMORY_TEMP_ROOT


def pytest_configure(config: pytest.Config) -> None:
    # Before pytest makes its base temp folder (lazily, on first use) and before xdist starts its
    # workers, which inherit the environment and so the same TMPDIR.
    root = None if os.environ.get("TMPDIR") else _memory_temp_root()
    if root is not None:
        os.environ["TMPDIR"] = str(root)
        tempfile.tempdir = None  # gettempdir() caches its first answer: read TMPDIR again
    # Each test's Dagster instance opens three SQLite stores, and alembic parses Dagster's migration
    # scripts afresh for every one; parsed once here, as a run's fork of the fork server does
    # (ml_platform.runs.preload), an instance takes about half the CPU to open.
    from ml_platform.runs import preload as run_preload

    run_preload.cache_alembic_scripts()


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Groups for xdist's `--dist loadgroup` (`make test`: two workers); other tests go to either.

    - Every e2e test, in one group: each starts a whole platform (dagster dev: webserver, daemon,
      code server, runs) or a browser and waits for it within bounded times; two at once on two
      cores would share the CPU with each other as well as with the in-process tests.
    - The tests of a module that use a module-scoped fixture (a server, a BuiltState), so that it
      starts or builds once, not once per worker.
    Every test keeps its own temp folder and free ports, so no other test needs a group.
    """
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        if item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.xdist_group("e2e"))
        elif any(d.scope == "module" for defs in item._fixtureinfo.name2fixturedefs.values() for d in defs):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))


@dataclass
class BuiltState:
    """A data folder and the Dagster instance that filled it, built once for several tests.

    A test module whose tests all start from the same runs defines a module-scoped fixture named
    `starting_state` that returns one (made with `build_state`). Every test whose fixtures include
    `starting_state` gets a copy of its data folder as `data_dir` and of its instance as `instance`:
    what a test writes changes its copy only. `value` is what the build returned for the tests to
    read (its runs' results); nothing may change it.
    """

    data_dir: Path
    dagster_home: Path
    value: Any = None


@contextlib.contextmanager
def build_state(root: Path) -> Iterator[tuple[BuiltState, dg.DagsterInstance]]:
    """A BuiltState in `root` and its instance, open while the runs are made, in the environment
    every test gets here (conftest's autouse fixtures are per test, and a module-scoped fixture
    runs before them). The environment is restored and the instance closed on exit."""
    state = BuiltState(root / "data", root / "dagster_home")
    (state.data_dir / "landing").mkdir(parents=True)
    state.dagster_home.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ML_PLATFORM_DATA_DIR", str(state.data_dir))
        mp.delenv("ML_PLATFORM_WAREHOUSE", raising=False)
        mp.setenv("ML_PLATFORM_PSEUDONYM_KEY", TEST_PSEUDONYM_KEY)
        for name in _configured_source_variables():
            mp.delenv(name)
        with dg.instance_for_test(temp_dir=str(state.dagster_home)) as inst:
            yield state, inst


def _starting_state(request: pytest.FixtureRequest) -> BuiltState | None:
    """The module's BuiltState when this test starts from it (see BuiltState)."""
    return request.getfixturevalue("starting_state") if "starting_state" in request.fixturenames else None


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Path:
    """A fresh ML_PLATFORM_DATA_DIR (landing files + warehouse) for one test, or a copy of the
    module's built one (BuiltState)."""
    root = tmp_path / "data"
    state = _starting_state(request)
    if state is None:
        (root / "landing").mkdir(parents=True)
    else:
        shutil.copytree(state.data_dir, root, symlinks=True)
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
    for name in _configured_source_variables():
        monkeypatch.delenv(name)
    monkeypatch.delenv("ML_PLATFORM_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("ML_PLATFORM_REDIS_URL", raising=False)  # tests that use Redis start their own


def _configured_source_variables() -> list[str]:
    return [n for n in os.environ if n.startswith(("ML_PLATFORM_PG_", "ML_PLATFORM_WEATHER_"))]


@pytest.fixture
def defs(data_dir: Path) -> dg.Definitions:
    from ml_platform.definitions import build_definitions

    return build_definitions()


@pytest.fixture
def instance(request: pytest.FixtureRequest):
    """A fresh Dagster instance for one test, or a copy of the module's built one (BuiltState)."""
    state, home = _starting_state(request), None
    if state is not None:
        home = request.getfixturevalue("tmp_path") / "dagster_home"
        shutil.copytree(state.dagster_home, home, symlinks=True)
    with dg.instance_for_test(temp_dir=None if home is None else str(home)) as inst:
        yield inst


@pytest.fixture(scope="session")
def make_dev_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tests' demo week (`make_dev.TEST_DEMO`, ending today), landed once per worker: each test
    that runs `make dev` copies it, so that their warehouses can be compared table by table."""
    from make_dev import TEST_DEMO
    from ml_platform.demo import generate

    data_dir = tmp_path_factory.mktemp("make_dev_demo") / "data"
    generate(data_dir, end_date=dt.datetime.now(dt.UTC).date(), **TEST_DEMO)
    return data_dir


@pytest.fixture(scope="session")
def uninterrupted_catch_ups() -> list[Path]:
    """Warehouses of `make dev` catch-ups of `make_dev_demo` that settled uninterrupted and passed
    their test, stopped: the end-to-end test adds its own, the chaos test compares with it (both in
    the e2e group, so on one worker, in that order) instead of running its own again."""
    return []


@pytest.fixture
def home(tmp_path) -> Path:
    """A DAGSTER_HOME folder, for a test whose subprocess opens the test's instance too."""
    path = tmp_path / "dagster_home"
    path.mkdir()
    return path


@pytest.fixture
def home_instance(home):
    """The test's Dagster instance, stored in `home` (a module overrides `instance` with it)."""
    with dg.instance_for_test(temp_dir=str(home)) as inst:
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
        from ml_platform.warehouse.resource import connect  # what the platform reads with (lake views need it)

        con = connect(self.data_dir / "warehouse.duckdb", read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()


@pytest.fixture
def demo_landing(tmp_path: Path) -> Path:
    """The demo's landing folder: four days to 2026-11-18, 300 events a day."""
    from ml_platform.demo import generate

    generate(tmp_path / "demo", days=4, events_per_day=300, seed=5, end_date=dt.date(2026, 11, 18))
    return tmp_path / "demo" / "landing"


def embedded_build(landing: Path, folder: Path, monkeypatch: pytest.MonkeyPatch, build, read):
    """`build(runner)` on a copy of `landing` with every table a DuckDB table of the warehouse file
    (`ML_PLATFORM_LAKE_TABLES=false`), under `folder` with an instance of its own, then
    `read(runner)`: the reference the lake modes' tables are compared with. The settings are
    restored afterwards."""
    from ml_platform.definitions import build_definitions

    shutil.copytree(landing, folder / "landing")
    with monkeypatch.context() as patched, dg.instance_for_test() as instance:
        patched.setenv("ML_PLATFORM_DATA_DIR", str(folder))
        patched.setenv("ML_PLATFORM_LAKE_TABLES", "false")
        runner = Runner(build_definitions(), instance, folder)
        build(runner)
        return read(runner)


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
