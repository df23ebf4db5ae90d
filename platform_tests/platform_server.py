"""A real `dagster dev` for end-to-end tests: started, queried over GraphQL, and stopped.

`running_platform(tmp_path)` does what `make dev` does, in isolation: a fresh data folder
(landing + warehouse) and DAGSTER_HOME (with the repository's dagster.yaml), a free port, and
`dagster dev -w workspace.yaml` in its own process group. It waits (bounded) until the code
location is loaded, yields a `Platform` with GraphQL helpers, and on exit kills the whole
process group. When the body raised, the dagster dev log is kept under test-artifacts/.

    with running_platform(tmp_path, sensor_interval=3) as platform:
        write_drip_file(platform.data_dir, day, seq=1, seed=1)
        platform.wait_for(lambda: day in platform.materialized_partitions("raw_events"), 120)

`platform.crash()` kills the whole process group at once (SIGKILL, as a power cut or an OOM kill
would: no run gets to finish or record its end), and `platform.start()` starts `dagster dev`
again on the same DAGSTER_HOME and data folder (on a new port), as an operator would.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import requests

from helpers import TEST_PSEUDONYM_KEY

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO_ROOT / "test-artifacts"
STARTUP_TIMEOUT = 120.0
T = TypeVar("T")

FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
SENSOR_STATE_SETTLE = 1.0  # seconds; a daemon tick writes back the state it read within milliseconds

_LOCATION_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""
_PARTITIONS_QUERY = """
query ($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { __typename ... on AssetNode {
  assetPartitionStatuses { __typename
    ... on TimePartitionStatuses { ranges { startKey endKey status } }
    ... on DefaultPartitionStatuses { materializedPartitions failedPartitions } } } } }
"""
_MATERIALIZATIONS_QUERY = """
query ($key: AssetKeyInput!, $partitions: [String!]) { assetNodeOrError(assetKey: $key) {
  __typename ... on AssetNode { assetMaterializations(partitions: $partitions) {
    runId partition timestamp metadataEntries { label ... on IntMetadataEntry { intValue } } } } } }
"""
_CHECKS_QUERY = """
query ($key: AssetKeyInput!, $check: String!, $partition: String) {
  assetCheckExecutions(assetKey: $key, checkName: $check, partition: $partition, limit: 20) {
    runId status partition timestamp evaluation { success description } } }
"""
_RUNS_QUERY = """
query ($filter: RunsFilter, $limit: Int) { runsOrError(filter: $filter, limit: $limit) {
  __typename ... on Runs { results { runId status creationTime
    assetSelection { path } tags { key value } } } } }
"""
_GRAPH_QUERY = "{ assetNodes { assetKey { path } dependencyKeys { path } } }"
_LAUNCH_RUN = """
mutation ($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on Error { message } } }
"""
_RUN_LOGS_QUERY = """
query ($runId: ID!, $after: String) { logsForRun(runId: $runId, afterCursor: $after, limit: 1000) { __typename
  ... on EventConnection { events { __typename ... on MessageEvent { message timestamp }
    ... on ExecutionStepFailureEvent { error { message } } } cursor hasMore } } }
"""
_SENSOR_CURSOR_QUERY = """
query ($s: SensorSelector!) { sensorOrError(sensorSelector: $s) { __typename
  ... on Sensor { sensorState { typeSpecificData { ... on SensorData { lastCursor } } } } } }
"""


class GraphQLError(AssertionError):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _days(first: str, last: str) -> list[str]:
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    return [(start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


@dataclass
class Run:
    run_id: str
    status: str
    tags: dict[str, str]
    assets: list[str]
    created: float

    @property
    def partition(self) -> str | None:
        return self.tags.get("dagster/partition")

    @property
    def sensor(self) -> str | None:
        return self.tags.get("dagster/sensor_name")


class LogEvent(NamedTuple):
    kind: str  # the GraphQL type: RunStartEvent, ExecutionStepStartEvent, RunFailureEvent, ...
    message: str
    time: float  # Unix time


@dataclass
class Platform:
    base_url: str
    data_dir: Path
    dagster_home: Path
    process: subprocess.Popen
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)  # dagster dev's environment, for a restart

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def pgid(self) -> int:
        return self.process.pid  # started with start_new_session: leader of its own group

    def save_log(self) -> Path:
        """Copy the dagster dev log to test-artifacts/ (for a failed test)."""
        ARTIFACTS.mkdir(exist_ok=True)
        return Path(shutil.copy(self.log_path, ARTIFACTS / self.log_path.name))

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 30.0) -> dict:
        response = requests.post(
            f"{self.base_url}/graphql", json={"query": query, "variables": variables or {}}, timeout=timeout
        )
        if response.status_code >= 400:
            raise GraphQLError(f"HTTP {response.status_code}: {response.text[:2000]}")
        body = response.json()
        if body.get("errors"):
            raise GraphQLError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def wait_for(self, predicate: Callable[[], T], timeout: float, interval: float = 1.0, what: str = "") -> T:
        """Poll until `predicate()` is truthy and return it; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"dagster dev exited with code {self.process.returncode}; see {self.log_path}")
            try:
                value = predicate()
                if value:
                    return value
            except (requests.RequestException, GraphQLError) as exc:  # transient while busy
                last_error = exc
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout:.0f}s waiting for {what or predicate}; last error: {last_error}\n"
                    f"runs (newest first):\n{self.describe_runs()}"
                )
            time.sleep(interval)

    # --- assets -------------------------------------------------------------------------
    def _asset_node(self, query: str, asset: str, **variables) -> dict:
        node = self.graphql(query, {"key": {"path": [asset]}, **variables})["assetNodeOrError"]
        if node["__typename"] != "AssetNode":
            raise GraphQLError(f"{asset}: {node['__typename']}")
        return node

    def partition_statuses(self, asset: str) -> dict[str, str]:
        """Partition key -> MATERIALIZED / FAILED / MATERIALIZING (unmaterialized keys are absent)."""
        statuses = self._asset_node(_PARTITIONS_QUERY, asset)["assetPartitionStatuses"]
        if statuses["__typename"] == "DefaultPartitionStatuses":
            return {
                **{k: "MATERIALIZED" for k in statuses["materializedPartitions"]},
                **{k: "FAILED" for k in statuses["failedPartitions"]},
            }
        return {day: r["status"] for r in statuses["ranges"] for day in _days(r["startKey"], r["endKey"])}

    def materialized_partitions(self, asset: str) -> set[str]:
        return {k for k, status in self.partition_statuses(asset).items() if status == "MATERIALIZED"}

    def materializations(self, asset: str, partition: str | None = None) -> list[dict]:
        """Newest first: runId, partition, timestamp (ms, as text) and metadataEntries."""
        partitions = [partition] if partition else None
        return self._asset_node(_MATERIALIZATIONS_QUERY, asset, partitions=partitions)["assetMaterializations"]

    def row_count(self, materialization: dict) -> int | None:
        """The rows of the materialized partition (`dagster/row_count` is the whole table's)."""
        for entry in materialization["metadataEntries"]:
            if entry["label"] == "dagster/partition_row_count":
                return entry.get("intValue")
        return None

    def check_executions(self, asset: str, check: str = "contract", partition: str | None = None) -> list[dict]:
        """Newest first: runId, status (SUCCEEDED, FAILED, IN_PROGRESS, ...), evaluation.success."""
        return self.graphql(_CHECKS_QUERY, {"key": {"path": [asset]}, "check": check, "partition": partition})[
            "assetCheckExecutions"
        ]

    def check_status(self, asset: str, check: str = "contract", partition: str | None = None) -> str | None:
        """Status of the latest execution of `check` (for one partition), None if never run."""
        executions = self.check_executions(asset, check, partition)
        return executions[0]["status"] if executions else None

    def lineage_edges(self) -> set[tuple[str, str]]:
        """(upstream, downstream) asset names."""
        nodes = self.graphql(_GRAPH_QUERY)["assetNodes"]
        return {("/".join(dep["path"]), "/".join(n["assetKey"]["path"])) for n in nodes for dep in n["dependencyKeys"]}

    def asset_names(self) -> set[str]:
        """Every asset of the code location, as the webserver lists it."""
        return {"/".join(n["assetKey"]["path"]) for n in self.graphql(_GRAPH_QUERY)["assetNodes"]}

    # --- runs ---------------------------------------------------------------------------
    def runs(self, limit: int = 200, **filter_: Any) -> list[Run]:
        """Newest first; `filter_` is a GraphQL RunsFilter, e.g. statuses=["SUCCESS"]."""
        data = self.graphql(_RUNS_QUERY, {"filter": filter_ or None, "limit": limit})["runsOrError"]
        if data["__typename"] != "Runs":
            raise GraphQLError(str(data))
        return [
            Run(
                r["runId"],
                r["status"],
                {t["key"]: t["value"] for t in r["tags"]},
                ["/".join(k["path"]) for k in r["assetSelection"] or []],
                r["creationTime"],
            )
            for r in data["results"]
        ]

    def describe_runs(self, limit: int = 30) -> str:
        try:
            return "\n".join(
                f"  {r.status:<9} {','.join(r.assets):<22} {r.partition or '-':<11} {r.sensor or 'manual'}"
                for r in self.runs(limit=limit)
            )
        except Exception as exc:  # only for a failure message
            return f"  (runs unavailable: {exc})"

    # --- process ------------------------------------------------------------------------
    def crash(self) -> None:
        """Kill dagster dev and everything it started (webserver, daemon, code server, run workers)
        with SIGKILL, all at once: nothing is shut down cleanly, in-flight runs stay recorded as
        started, as after a crash."""
        pgid = self.pgid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process_group_alive(pgid):
            time.sleep(0.1)
        if process_group_alive(pgid):
            raise AssertionError(f"processes of group {pgid} survived SIGKILL")

    def start(self) -> None:
        """Start dagster dev (again) on this DAGSTER_HOME and data folder, on a free port; returns
        once the code location is loaded. The log is appended to."""
        if self.process.poll() is None:
            raise AssertionError("dagster dev is still running: crash() or stop it first")
        port = _free_port()
        self.process = launch_dagster_dev(self.env, port, self.log_path)
        self.base_url = f"http://127.0.0.1:{port}"
        self.wait_for(lambda: _location_loaded(self), STARTUP_TIMEOUT, what="the code location to load")

    def idle(self) -> bool:
        """No run queued, starting or running."""
        return not [r for r in self.runs() if r.status not in FINISHED]

    def launch_run(self, asset: str, partition: str | None = None, tags: dict[str, str] | None = None) -> str:
        """Materialize `asset` (one partition) in a new run, as the asset page's button does (its checks
        included); returns the run id. The run queues like any other."""
        tags = {**(tags or {}), **({"dagster/partition": partition} if partition else {})}
        params = {
            "selector": {
                "repositoryLocationName": "ml_platform",
                "repositoryName": "__repository__",
                "jobName": "__ASSET_JOB",
                "assetSelection": [{"path": [asset]}],
            },
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        }
        result = self.graphql(_LAUNCH_RUN, {"params": params})["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            raise GraphQLError(f"launching {asset} {partition}: {result}")
        return result["run"]["runId"]

    def run_log(self, run_id: str) -> list[LogEvent]:
        """Every event of a run's log, oldest first; a step failure's message ends with its error's."""
        events, cursor = [], None
        while True:
            page = self.graphql(_RUN_LOGS_QUERY, {"runId": run_id, "after": cursor})["logsForRun"]
            if page["__typename"] != "EventConnection":
                raise GraphQLError(f"{run_id}: {page}")
            for e in page["events"]:
                error = (e.get("error") or {}).get("message")
                message = "\n".join(filter(None, [e.get("message"), error]))
                events.append(LogEvent(e["__typename"], message, int(e.get("timestamp") or 0) / 1000))
            cursor = page["cursor"]
            if not page["hasMore"]:
                return events

    def sensor_cursor(self, name: str) -> str | None:
        """The cursor a sensor stored after its last tick (as the daemon keeps it across restarts)."""
        sensor = self.graphql(_SENSOR_CURSOR_QUERY, {"s": _sensor_selector(name)})["sensorOrError"]
        if sensor["__typename"] != "Sensor":
            raise GraphQLError(f"{name}: {sensor}")
        return sensor["sensorState"]["typeSpecificData"]["lastCursor"]

    def set_sensor(self, name: str, running: bool) -> None:
        """Start or stop a sensor of the code location (as the Automation page's toggle does),
        and return once the stored state holds.

        The automation daemon reads a sensor's state at the start of a tick and writes that copy
        back a moment later; a stop that lands in between is overwritten (Dagster 1.13). So the
        state is read back after `SENSOR_STATE_SETTLE` seconds and the toggle repeated if it did
        not hold."""
        for _ in range(5):
            self._toggle_sensor(name, running)
            time.sleep(SENSOR_STATE_SETTLE)
            if self._sensor_state(name)["status"] == ("RUNNING" if running else "STOPPED"):
                return
        raise AssertionError(f"sensor {name} did not stay {'running' if running else 'stopped'}")

    def _sensor_state(self, name: str) -> dict:
        return self.graphql(
            "query ($s: SensorSelector!) { sensorOrError(sensorSelector: $s) { __typename"
            " ... on Sensor { sensorState { id status } } } }",
            {"s": _sensor_selector(name)},
        )["sensorOrError"]["sensorState"]

    def _toggle_sensor(self, name: str, running: bool) -> None:
        if running:
            query = "mutation ($s: SensorSelector!) { startSensor(sensorSelector: $s) { __typename } }"
            result = self.graphql(query, {"s": _sensor_selector(name)})["startSensor"]
        else:
            query = "mutation ($id: String!) { stopSensor(id: $id) { __typename } }"
            result = self.graphql(query, {"id": self._sensor_state(name)["id"]})["stopSensor"]
        if "Error" in result["__typename"]:
            raise GraphQLError(f"{name}: {result}")


def _sensor_selector(name: str) -> dict:
    return {"repositoryLocationName": "ml_platform", "repositoryName": "__repository__", "sensorName": name}


USERS_DAY = dt.date(2026, 1, 1)  # first partition: the snapshot is valid for every later day


def write_demo_users(data_dir: Path, day: dt.date = USERS_DAY) -> Path:
    """The demo users snapshot (ids U00001.., which demo event files use), landed on `day`:
    landing/users/<day>/users.csv."""
    from ml_platform.demo.generator import generate

    scratch = data_dir.parent / "demo_scratch"
    generate(scratch, days=1, events_per_day=1, seed=7, end_date=day)
    written = list((scratch / "landing" / "users").rglob("users.csv"))
    assert len(written) == 1, written
    target = data_dir / "landing" / "users" / day.isoformat() / "users.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(written[0], target)
    shutil.rmtree(scratch)
    return target


def _location_loaded(platform: Platform) -> bool:
    data = platform.graphql(_LOCATION_QUERY, timeout=5)["workspaceOrError"]
    entries = data.get("locationEntries") or []
    for entry in entries:
        if entry["loadStatus"] == "LOADED" and entry["locationOrLoadError"]["__typename"] == "PythonError":
            raise AssertionError(f"code location failed to load: {entry['locationOrLoadError']['message']}")
    return any(e["name"] == "ml_platform" and e["loadStatus"] == "LOADED" for e in entries)


def _stop(process: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left of it."""
    try:
        pgid = os.getpgid(process.pid)
    except ProcessLookupError:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and process_group_alive(pgid):
        time.sleep(0.2)
        process.poll()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    # SIGKILL is delivered at once but a busy machine takes a moment to tear the processes down
    # (seen: the group still listed right after the kill while apt ran beside the tests).
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and process_group_alive(pgid):
        time.sleep(0.1)


def process_group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # Zombies still count for killpg; a group of zombies only is dead for our purpose.
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


@contextlib.contextmanager
def running_platform(tmp_path: Path, sensor_interval: int = 3, name: str = "dagster_dev") -> Iterator[Platform]:
    """`dagster dev` on `tmp_path/data` (files already there are kept, e.g. a users snapshot)."""
    data_dir = tmp_path / "data"
    (data_dir / "landing").mkdir(parents=True, exist_ok=True)
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    port = _free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ML_PLATFORM_DATA_DIR": str(data_dir),
        "ML_PLATFORM_SENSOR_INTERVAL": str(sensor_interval),
        "ML_PLATFORM_PSEUDONYM_KEY": TEST_PSEUDONYM_KEY,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT / "platform"), os.environ.get("PYTHONPATH")])),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("ML_PLATFORM_WAREHOUSE", None)
    log_path = tmp_path / f"{name}.log"
    log_path.unlink(missing_ok=True)
    process = launch_dagster_dev(env, port, log_path)
    platform = Platform(f"http://127.0.0.1:{port}", data_dir, home, process, log_path, env)
    failed = True
    try:
        platform.wait_for(lambda: _location_loaded(platform), STARTUP_TIMEOUT, what="the code location to load")
        # The community modal of a first visit; dagster.yaml disables it too.
        platform.graphql("mutation { setNuxSeen }")
        yield platform
        failed = False
    finally:
        # The current process: a test may have crashed and restarted it.
        _stop(platform.process)
        if failed:
            platform.save_log()


def launch_dagster_dev(env: dict[str, str], port: int, log_path: Path, repo: Path = REPO_ROOT) -> subprocess.Popen:
    """`dagster dev` of `repo` in its own process group (so the whole tree can be stopped), logging
    to `log_path` (appended: a restart keeps the first run's log)."""
    with log_path.open("ab") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
            cwd=repo,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
