"""`make dev` itself, started by the end-to-end test and `make screenshot`, settled, and stopped like Ctrl-C.

`running_make_dev(root)` lands a demo week in `root/data` (smaller than make dev's own unless asked:
the run count, not the rows, sets the cost), then runs `make dev` with that data folder, a DAGSTER_HOME
under `root` and free ports, in its own process group, as a terminal would run it. Everything else is
make dev's: the payments database, the fake weather API, the Kafka broker (on a free port) and its
demo producer, the metrics server, the partitions' start at the demo's first day, dagster dev. It
yields a `Platform` (platform_server.py's GraphQL helpers) whose process is make; on exit the group
gets SIGINT, as a terminal's Ctrl-C, and what survives is killed. When the body raised, the log is
kept under test-artifacts/.

`expected_partitions(manifest, now)` is what a settled demo holds, asset by asset, and
`wait_until_settled` waits for exactly that: every run ended, no run for a quiet spell, and every
expected partition materialized. The stream never settles: its producer sends events for as long as
make dev runs, so the lag sensor and the automation keep requesting runs of the stream's own assets
(`STREAM_ASSETS`, which nothing else reads). Those runs are left out of "every run ended" and of the
quiet spell; a run that also holds another asset counts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from ml_platform.declarations import discover_stream_views
from ml_platform.declarations.sources.stream_events import SPEC as STREAM
from ml_platform.declarations.sources.weather import SPEC as WEATHER
from ml_platform.demo import generate
from ml_platform.demo.manifest import read_manifest
from ml_platform.ingestion.api.catch_up import last_due_day
from platform_server import (
    FINISHED,
    REPO_ROOT,
    STARTUP_TIMEOUT,
    Platform,
    _free_port,
    _location_loaded,
    process_group_alive,
)

# The demo make dev lands (Makefile: demo-data) is 7 days x 2000 events with seed 7; the tests land
# the same 7 days (the fewest that give the device-failure model a training and a validation window)
# with fewer rows.
TEST_DEMO = {"days": 7, "events_per_day": 300, "seed": 7, "telemetry_hours_per_day": 6}
MAKE_DEV_DEMO = {"days": 7, "events_per_day": 2000, "seed": 7, "telemetry_hours_per_day": 24}
# Seconds without a run created or ended: longer than three automation ticks (5 s each).
QUIET_SECONDS = 20.0
STOP_TIMEOUT = 120.0
# The churn label is final 30 + 3 days after its day: no demo week reaches that.
NEVER_IN_A_WEEK = ("churn_label", "churn_training_set", "churn_model", "churn_leaky_model")
# Run by their own daily schedule only (the lake's housekeeping, at 04:45 UTC): not awaited.
ON_THEIR_SCHEDULE = ("lake_housekeeping",)
UNPARTITIONED = (
    "clean_users",
    "clean_products",
    "device_failure_training_set",
    "device_failure_model",
    "device_failure_leaky_model",
    "latest_features",
)

# The stream source's assets, its real-time views included: its runs go on while make dev runs
# (module docstring).
STREAM_VIEWS = frozenset(v.name for v in discover_stream_views() if v.source == STREAM.name)
STREAM_ASSETS = frozenset({f"raw_{STREAM.name}", f"clean_{STREAM.name}", *STREAM_VIEWS})

_RUNS_QUERY = """
query { runsOrError(limit: 1000) { __typename ... on Runs {
  results { runId status creationTime endTime assetSelection { path } }
} } }
"""


def _days(first: dt.date, last: dt.date) -> set[str]:
    return {(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)}


def expected_partitions(manifest: dict, now: dt.datetime) -> dict[str, set[str]]:
    """Partition keys each partitioned asset holds once make dev has settled on `manifest`'s demo, at `now`."""
    first, last = dt.date.fromisoformat(manifest["start_date"]), dt.date.fromisoformat(manifest["end_date"])
    week = _days(first, last)
    # The catch-up fetches complete days only; the clean day after the newest one is written (empty)
    # because it reads the landing day before it.
    fetched = _days(first, min(last, last_due_day(WEATHER, now)))
    weather_days = _days(first, min(last, last_due_day(WEATHER, now) + dt.timedelta(days=1)))
    return {
        **{f"raw_{s}": week for s in ("events", "users", "products", "telemetry", "maintenance", "transactions")},
        "raw_weather": fetched,
        **{f"clean_{s}": week for s in ("events", "telemetry", "maintenance", "transactions")},
        "clean_weather": weather_days,
        "weather": weather_days,
        "device_health": week,
        "user_daily_features": week,
        # Views of the days before D: the first day has no days before it in the partitions, so
        # nothing triggers it.
        "user_activity": week - {first.isoformat()},
        "user_transactions": week - {first.isoformat()},
        # Automated for the latest day only (features/product_features.py).
        "product_features": {last.isoformat()},
        # Final 2 + 2 days after its day (labels/device_failure.py).
        "device_failure_label": _days(first, last - dt.timedelta(days=4)),
        "churn_label": set(),
    }


def is_stream_run(assets: list[str]) -> bool:
    """A run of the stream's assets only (asset names as `Run.assets` holds them)."""
    return bool(assets) and set(assets) <= STREAM_ASSETS


def _last_activity(platform: Platform) -> tuple[bool, float]:
    """(every run ended, the newest creation or end time), runs of the stream's assets left out."""
    data = platform.graphql(_RUNS_QUERY)["runsOrError"]
    runs = [r for r in data["results"] if not is_stream_run(["/".join(k["path"]) for k in r["assetSelection"] or []])]
    busy = any(r["status"] not in FINISHED for r in runs)
    return not busy, max([r["endTime"] or 0 for r in runs] + [r["creationTime"] for r in runs] + [0.0])


def missing_partitions(platform: Platform, expected: dict[str, set[str]]) -> dict[str, list[str]]:
    missing = {asset: sorted(keys - platform.materialized_partitions(asset)) for asset, keys in expected.items()}
    missing |= {asset: ["(never materialized)"] for asset in UNPARTITIONED if not platform.materializations(asset)}
    return {asset: keys for asset, keys in missing.items() if keys}


def wait_until_settled(platform: Platform, expected: dict[str, set[str]], timeout: float) -> float:
    """Wait until the demo has settled (module docstring); returns the Unix time the last run ended."""
    state: dict = {}

    def settled() -> bool:
        ended, last = _last_activity(platform)
        if not ended or time.time() - last < QUIET_SECONDS:
            return False
        state["last"], state["missing"] = last, missing_partitions(platform, expected)
        return not state["missing"]

    try:
        platform.wait_for(settled, timeout, interval=2, what="the demo to settle")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nmissing when last idle: {state.get('missing')}") from None
    return state["last"]


def interrupt(platform: Platform, timeout: float = STOP_TIMEOUT) -> float:
    """Ctrl-C: SIGINT to make's process group; returns the seconds until make exited."""
    started = time.monotonic()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(platform.pgid, signal.SIGINT)
    try:
        platform.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        # What is still running goes into make dev's log (kept under test-artifacts/).
        left = subprocess.run(
            ["ps", "-o", "pid,ppid,stat,etimes,args", "-g", str(platform.pgid)], capture_output=True, text=True
        ).stdout
        with platform.log_path.open("a") as log:
            log.write(f"\n--- still running {timeout:.0f} s after Ctrl-C ---\n{left}")
        # Each Python process left prints every thread's stack to the log as it aborts
        # (PYTHONFAULTHANDLER, set below): where it waits.
        for line in left.splitlines()[1:]:
            pid, _, _, _, command = line.split(None, 4)
            if "python" in command:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGABRT)
        time.sleep(3)
        raise
    return time.monotonic() - started


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def running_make_dev(
    root: Path, name: str = "make_dev", demo: dict | None = None, make_vars: dict | None = None
) -> Iterator[Platform]:
    """`make dev` on a demo in `root/data` (landed here unless already there); see the module docstring.
    `make_vars`: more of make dev's variables (`{"STREAM_RATE": 0}`: the broker runs, nothing is produced)."""
    data_dir, home = root / "data", root / "dagster_home"
    if read_manifest(data_dir) is None:
        generate(data_dir, end_date=dt.datetime.now(dt.UTC).date(), **(demo or TEST_DEMO))
    port = _free_port()
    # make dev's own defaults, whatever this shell has configured (the tests' pseudonym key excepted).
    env = {k: v for k, v in os.environ.items() if not k.startswith("ML_PLATFORM_") or k == "ML_PLATFORM_PSEUDONYM_KEY"}
    env.pop("DAGSTER_HOME", None)
    env["PYTHONFAULTHANDLER"] = "1"  # a stuck process's stacks, when `interrupt` aborts it
    log_path = root / f"{name}.log"
    variables = {
        "DATA_DIR": data_dir,
        "DAGSTER_HOME": home,
        "PORT": port,
        "WEATHER_PORT": _free_port(),
        "METRICS_PORT": _free_port(),
        # make dev's default, 9092, is any other broker's on this machine too.
        "KAFKA_PORT": _free_port(),
        "REDIS_PORT": _free_port(),
        "SERVE_PORT": _free_port(),
        **(make_vars or {}),
    }
    with log_path.open("ab") as log:
        # `-o install`: the venv running the tests is the one make dev uses; never reinstall it here.
        process = subprocess.Popen(
            ["make", "--no-print-directory", "-o", "install", "dev", *(f"{k}={v}" for k, v in variables.items())],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # As a terminal starts it: Ctrl-C and SIGTERM at their default actions, whatever this
            # test process inherited (a suite started in the background has SIGINT ignored, and
            # every process of make dev would then ignore the Ctrl-C below).
            preexec_fn=_default_signals,
        )
    platform = Platform(f"http://127.0.0.1:{port}", data_dir, home, process, log_path, env)
    failed = True
    try:
        platform.wait_for(lambda: _location_loaded(platform), STARTUP_TIMEOUT, what="the code location to load")
        yield platform
        failed = False
    finally:
        if platform.process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                interrupt(platform)
        if process_group_alive(platform.pgid):  # whatever survived the Ctrl-C
            with contextlib.suppress(ProcessLookupError):
                os.killpg(platform.pgid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                platform.process.wait(timeout=10)
        if failed:
            platform.save_log()
