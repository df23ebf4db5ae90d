"""The stream benchmark's platform: a broker, Redis and Dagster's daemon on the real code location.

`started_platform(repo, work)` starts, in isolation under `work`:

- a Kafka broker (`ml_platform.demo.kafka_broker`, the project's jars from `make kafka`) with the
  demo's topic (`clickstream`, `partitions` partitions) created before anything reads it;
- a Redis server (`ml_platform.demo.redis_server`), its URL given to the platform as
  `ML_PLATFORM_REDIS_URL`; when that variable is already set, that server is used instead and none
  is started (as `make dev` does with the broker). The stream views write to it when the platform
  has an online store (`ml_platform.online_store`); the view step's metadata says whether it did;
- a fresh data folder and DAGSTER_HOME holding the repository's dagster.yaml, migrated before
  anything else opens it;
- `dagster-daemon run -w workspace.yaml` in its own process group: the whole code location, every
  sensor at its default; the stream source's lag sensor requests the micro-batch runs, the run
  queue launches them as forks (the platform's launcher). No webserver: nothing here needs one,
  and it would only add its own CPU.

On exit the daemon's group is killed (SIGTERM, then SIGKILL), then Redis and the broker.

`ProcessSampler` samples /proc every `interval` seconds: per component (the daemon's tree, the
broker, Redis, the producers) the CPU time and resident memory of the process and all its
descendants, and the whole machine's busy cores (the machine is shared: this says how much of it
the benchmark had).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from dev_platform import kill_group

PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024
LAG_SENSOR = "stream_events_lag_sensor"
RAW_KEY = dg.AssetKey("raw_stream_events")
SOURCE_TAG = "ml_platform/stream_source"


@dataclass
class StreamPlatform:
    repo: Path
    work: Path
    env: dict[str, str]
    bootstrap: str
    redis_url: str | None
    redis_started: bool
    daemon: subprocess.Popen
    broker_pid: int
    redis_pid: int | None

    @property
    def home(self) -> Path:
        return Path(self.env["DAGSTER_HOME"])

    @property
    def warehouse(self) -> Path:
        return Path(self.env["ML_PLATFORM_DATA_DIR"]) / "warehouse.duckdb"

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.home))

    def check_alive(self) -> None:
        if self.daemon.poll() is not None:
            raise RuntimeError(f"dagster-daemon exited with {self.daemon.returncode}: {self.log_tail()}")

    def log_tail(self) -> str:
        log = self.work / "daemon.log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else ""


def _env(repo: Path, work: Path, bootstrap: str, redis_url: str | None, sensor_interval: int | None) -> dict[str, str]:
    env = {
        **os.environ,
        "ML_PLATFORM_DATA_DIR": str(work / "data"),
        "DAGSTER_HOME": str(work / "dagster_home"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(repo / "platform"), os.environ.get("PYTHONPATH")])),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "PYTHONUNBUFFERED": "1",
        "ML_PLATFORM_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        # Partitions from yesterday: the automation sensor looks at two days, not the year's.
        "ML_PLATFORM_START_DATE": (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat(),
    }
    # Every other source idle, every setting at its default (as `make dev` without its demo servers).
    for name in (
        "ML_PLATFORM_WAREHOUSE",
        "ML_PLATFORM_SENSOR_INTERVAL",
        "ML_PLATFORM_WEATHER_API_URL",
        "ML_PLATFORM_PG_HOST",
        "ML_PLATFORM_STORAGE",
        "ML_PLATFORM_PARALLEL_RAW",
    ):
        env.pop(name, None)
    if sensor_interval is not None:
        env["ML_PLATFORM_SENSOR_INTERVAL"] = str(sensor_interval)
    if redis_url:
        env["ML_PLATFORM_REDIS_URL"] = redis_url
    env.setdefault("ML_PLATFORM_PSEUDONYM_KEY", secrets.token_hex(32))
    return env


def stop_daemon(process: subprocess.Popen, timeout: float = 20.0) -> None:
    """Stop the daemon's process group (SIGTERM, then SIGKILL), then every descendant it had that is
    still alive (a run's fork may be in a session of its own), and wait until all are gone: a run
    killed mid-write holds the warehouse's lock until its process has exited."""
    descendants = [pid for pid in _tree(_processes(), process.pid) if pid != process.pid]
    kill_group(process)
    for pid in descendants:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while any(Path(f"/proc/{pid}").exists() and not _zombie(pid) for pid in descendants):
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes of the daemon still alive after {timeout:.0f}s: {descendants}")
        time.sleep(0.1)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


@contextlib.contextmanager
def started_platform(
    repo: Path,
    work: Path,
    partitions: int = 3,
    sensor_interval: int | None = None,
    daemon_command: list[str] | None = None,
) -> Iterator[StreamPlatform]:
    from ml_platform.demo.kafka_broker import new_broker
    from ml_platform.demo.redis_server import RedisServer, missing_reason
    from ml_platform.demo.redis_server import free_port as free_redis_port
    from ml_platform.demo.stream import TOPIC, ensure_topic

    work.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        broker = new_broker(work / "kafka")
        stack.callback(broker.stop, hard=True)
        broker.start()
        ensure_topic(broker.bootstrap, TOPIC, partitions)
        redis_url, redis = os.environ.get("ML_PLATFORM_REDIS_URL"), None
        if not redis_url:
            reason = missing_reason()
            if reason:
                print(f"no Redis: {reason}", flush=True)
            else:
                redis = RedisServer(work / "redis", free_redis_port())
                stack.callback(redis.stop, hard=True)
                redis.start()
                redis_url = redis.url
        env = _env(repo, work, broker.bootstrap, redis_url, sensor_interval)
        home = Path(env["DAGSTER_HOME"])
        home.mkdir(parents=True)
        shutil.copy(repo / "dagster.yaml", home / "dagster.yaml")
        subprocess.run(
            [sys.executable, "-m", "dagster", "instance", "migrate"], cwd=repo, env=env, check=True, capture_output=True
        )
        command = daemon_command or [str(Path(sys.executable).parent / "dagster-daemon"), "run"]
        with (work / "daemon.log").open("ab") as log:
            daemon = subprocess.Popen(
                [*command, "-w", "workspace.yaml"],
                cwd=repo,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        stack.callback(stop_daemon, daemon)
        yield StreamPlatform(
            repo=repo,
            work=work,
            env=env,
            bootstrap=broker.bootstrap,
            redis_url=redis_url,
            redis_started=redis is not None,
            daemon=daemon,
            broker_pid=broker.process.pid,
            redis_pid=redis.process.pid if redis else None,
        )


def lag_sensor_ticks(instance: dg.DagsterInstance) -> list:
    """The lag sensor's ticks, oldest first (none before the daemon has evaluated it)."""
    states = [s for s in instance.all_instigator_state() if s.name == LAG_SENSOR]
    if not states:
        return []
    ticks = instance.get_ticks(states[0].instigator_origin_id, states[0].selector_id, limit=100_000)
    return sorted(ticks, key=lambda t: t.timestamp)


def wait_ready(platform: StreamPlatform, timeout: float) -> float:
    """Wait until the lag sensor has ticked (the daemon has loaded the code location); seconds waited."""
    started = time.monotonic()
    instance = platform.instance()
    while not lag_sensor_ticks(instance):
        platform.check_alive()
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"the lag sensor did not tick within {timeout:.0f}s: {platform.log_tail()}")
        time.sleep(1.0)
    return time.monotonic() - started


# --- /proc sampling ---------------------------------------------------------------------------


def _processes() -> dict[int, tuple[int, float, int]]:
    """pid -> (parent pid, CPU seconds of itself and its reaped children, resident bytes)."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            rss = int(Path(entry.path, "statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
        # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        ppid = int(fields[1])
        utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
        found[int(entry.name)] = (ppid, (utime + stime + cutime + cstime) / TICK, rss)
    return found


def _tree(processes: dict, root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in processes.items():
        children.setdefault(ppid, []).append(pid)
    todo, tree = [root], []
    while todo:
        pid = todo.pop()
        if pid in processes:
            tree.append(pid)
            todo.extend(children.get(pid, ()))
    return tree


def _machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class Component:
    cpu_s: float = 0.0  # CPU seconds of the tree, kept monotone (a child's time moves to its parent when reaped)
    peak_rss: int = 0
    peak_processes: int = 0
    series: list = field(default_factory=list)  # (seconds since start, CPU s, RSS MiB)


class ProcessSampler:
    """Samples the named process trees every `interval` seconds until stopped (a thread)."""

    def __init__(self, roots: Callable[[], dict[str, int | None]], interval: float = 0.5, series_every: float = 5.0):
        self.roots, self.interval, self.series_every = roots, interval, series_every
        self.components: dict[str, Component] = {}
        self.machine: list = []  # (seconds since start, busy cores over the last period, load average)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.started = time.time()

    def __enter__(self) -> ProcessSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        base: dict[str, float] = {}
        last_series = -self.series_every
        busy0, total0 = _machine_busy()
        cores = os.cpu_count() or 1
        while not self._stop.is_set():
            processes = _processes()
            now = time.time() - self.started
            for name, root in self.roots().items():
                if root is None:
                    continue
                tree = _tree(processes, root)
                component = self.components.setdefault(name, Component())
                cpu = sum(processes[p][1] for p in tree)
                base.setdefault(name, cpu)  # CPU spent before sampling began (startup) is not counted
                component.cpu_s = max(component.cpu_s, cpu - base[name])
                rss = sum(processes[p][2] for p in tree)
                component.peak_rss = max(component.peak_rss, rss)
                component.peak_processes = max(component.peak_processes, len(tree))
                if now - last_series >= self.series_every:
                    component.series.append((round(now, 1), round(component.cpu_s, 2), round(rss / MIB, 1)))
            if now - last_series >= self.series_every:
                busy, total = _machine_busy()
                share = (busy - busy0) / (total - total0) if total > total0 else 0.0
                busy0, total0 = busy, total
                load = float(Path("/proc/loadavg").read_text().split()[0])
                self.machine.append((round(now, 1), round(share * cores, 2), load))
                last_series = now
            self._stop.wait(self.interval)

    def summary(self) -> dict:
        return {
            name: {
                "cpu_s": round(c.cpu_s, 1),
                "peak_rss_mib": round(c.peak_rss / MIB, 1),
                "peak_processes": c.peak_processes,
                "series": c.series,
            }
            for name, c in self.components.items()
        } | {"machine": {"cores": os.cpu_count(), "series_busy_cores_loadavg": self.machine}}
