"""Real Dagster runs in real processes, ready to be killed: the crash-safety tests' run server.

The server half runs as a script (`python platform_tests/crash_runner.py`, ML_PLATFORM_DATA_DIR
set): it imports Dagster and the platform's definitions once, prints `<pid> ready`, then reads
one request per stdin line, `{"asset": "raw_events", "partition": "2026-01-10"}`, and forks a
worker process for each. The worker materializes the asset with `dg.materialize` (an ephemeral
instance; the warehouse is the real DuckDB file) and exits; the server prints
`<worker pid> started`, waits for it, and prints `<worker pid> exit <code>`, or
`<worker pid> exit signal <number>` when it was killed. Forking after the imports (and after
warming up what a first run imports lazily) saves about three seconds per run, which is what
lets a test kill fifteen runs and re-run them in bounded time; the server holds no DuckDB
connection and runs a single thread, so a worker inherits nothing live.

Markers, printed by the worker with its pid, say how far the warehouse write got: `begin` once
`Warehouse.transaction()` has opened its transaction, `commit` when the body is done and COMMIT
is about to run, `committed` when COMMIT has returned and the connection is closed (DuckDB
checkpoints on close), `done ok|failed` when the run has finished; on the lake, `work`,
`lake-commit` and `lake-committed` around a raw run's working copy and its catalog commit. They wrap the resource's own
transaction and change nothing in it. Every line is one `os.write` of less than PIPE_BUF bytes,
so lines never interleave, and a line a worker wrote before it was killed is in the pipe.

The client half, `RunServer`, starts the server in its own process group, sends a run, kills
the worker with SIGKILL a given delay after a given marker (or once a given file has bytes in
it), and returns which markers the worker printed and how it ended.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT = 120.0
RUN_TIMEOUT = 180.0


# --- server: runs in its own process ---------------------------------------------------------


def say(pid: int, *words: object) -> None:
    os.write(1, (" ".join(str(w) for w in (pid, *words)) + "\n").encode())


def _trace_lake_commits(working_copy_class) -> None:
    """Print the markers of a run on the lake: `work` when its working copy is made, `lake-commit`
    before its catalog commit, `lake-committed` after it (the warehouse's views not yet pointed)."""
    made, commit = working_copy_class.__init__, working_copy_class.commit

    def traced_init(self, con):
        made(self, con)
        say(os.getpid(), "work")

    def traced_commit(self, run_id):
        say(os.getpid(), "lake-commit")
        committed = commit(self, run_id)
        say(os.getpid(), "lake-committed")
        return committed

    working_copy_class.__init__, working_copy_class.commit = traced_init, traced_commit


def _trace_transactions(warehouse_class) -> None:
    """Print the markers around the resource's own transaction (same statements, same order)."""
    original = warehouse_class.transaction

    @contextmanager
    def traced(self):
        with original(self) as con:
            say(os.getpid(), "begin")
            yield con
            say(os.getpid(), "commit")
        say(os.getpid(), "committed")

    warehouse_class.transaction = traced


def _work(dg, defs, request: dict) -> int:
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [defs.get_assets_def(request["asset"])],
            instance=instance,
            resources=defs.resources,
            partition_key=request.get("partition"),
            raise_on_error=False,
        )
    say(os.getpid(), "done", "ok" if result.success else "failed")
    return 0 if result.success else 1


# Imported by a run's first materialization (instance storage, in-process execution, the
# contract check's Pandera backend): imported once here instead of in every worker. A name
# missing in another version only costs that time again.
WARM_UP = (
    "dagster._core.execution.execute_in_process",
    "dagster._core.executor.in_process",
    "dagster._core.instance.runs.run_domain",
    "upath",
    "ibis.backends.duckdb.converter",
    "ibis.formats.pyarrow",
    "pandera.backends.ibis.container",
    "pandera.backends.ibis.components",
    "pandera.backends.ibis.builtin_checks",
)


def serve() -> None:
    import dagster as dg

    from ml_platform.definitions import build_definitions
    from ml_platform.lakehouse.working_copy import WorkingCopy
    from ml_platform.warehouse import Warehouse

    defs = build_definitions()
    for name in WARM_UP:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    # An ephemeral instance imports its storage (SQLAlchemy, Alembic) and is closed again.
    with dg.DagsterInstance.ephemeral():
        pass
    _trace_transactions(Warehouse)
    _trace_lake_commits(WorkingCopy)
    say(os.getpid(), "ready")
    for line in sys.stdin:
        request = json.loads(line)
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _work(dg, defs, request)
            finally:
                # Neither atexit handlers nor the server's buffered output belong to the worker.
                os._exit(code)
        say(pid, "started")
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            say(pid, "exit", "signal", os.WTERMSIG(status))
        else:
            say(pid, "exit", os.WEXITSTATUS(status))


# --- client: the test's side ---------------------------------------------------------------


@dataclass(frozen=True)
class Kill:
    """SIGKILL the worker `delay` seconds after its `after` marker reached the test; with
    `written`, as soon as that file (e.g. DuckDB's WAL) exists with bytes in it, once the marker
    has arrived (polled every 0.2 ms; at the latest when the run would finish)."""

    after: str
    delay: float = 0.0
    written: Path | None = None

    def __str__(self) -> str:
        if self.written:
            return f"{self.after}+{self.written.name} written"
        return f"{self.after}+{self.delay * 1000:.0f}ms"

    def wait(self, marker_at: float, quiet) -> None:
        """Until it is time to kill; `quiet()` is false once the worker has reported more."""
        if self.written is None:
            time.sleep(max(marker_at + self.delay - time.monotonic(), 0.0))
            return
        while quiet():
            with contextlib.suppress(FileNotFoundError):
                if self.written.stat().st_size > 0:
                    return
            time.sleep(0.0002)


@dataclass
class RunOutcome:
    pid: int
    # begin / commit / committed (work / lake-commit / lake-committed) -> when it reached the test.
    markers: dict[str, float]
    done: str | None  # "ok" or "failed" once the run finished, None if it never did
    exit: str

    @property
    def killed(self) -> bool:
        return self.exit == f"signal {int(signal.SIGKILL)}"

    @property
    def succeeded(self) -> bool:
        return self.exit == "0" and self.done == "ok"

    def span(self, first: str, last: str) -> float:
        return self.markers[last] - self.markers[first]


class RunServer:
    """The server process with ML_PLATFORM_DATA_DIR=`data_dir` and `settings` (more environment
    variables); its stderr (Dagster's log) goes to `log_path`."""

    def __init__(self, data_dir: Path, log_path: Path, settings: dict[str, str] | None = None):
        from helpers import TEST_PSEUDONYM_KEY  # the tests' side only: the server process never needs it

        env = {
            **os.environ,
            "ML_PLATFORM_DATA_DIR": str(data_dir),
            # Started by a module-scoped fixture, before conftest's per-test key is set.
            "ML_PLATFORM_PSEUDONYM_KEY": TEST_PSEUDONYM_KEY,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT / "platform"), os.environ.get("PYTHONPATH")])),
            "DAGSTER_DISABLE_TELEMETRY": "1",
            **(settings or {}),
        }
        env.pop("ML_PLATFORM_WAREHOUSE", None)
        self.data_dir, self.log_path = data_dir, log_path
        (data_dir / "landing").mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, __file__],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
        )
        self._lines: queue.Queue[tuple[float, list[str]] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        _, words = self._next(READY_TIMEOUT)
        assert words[1:] == ["ready"], words

    def _read(self) -> None:
        for raw in self.process.stdout:
            # Stamped on arrival, so a kill's delay counts from when the marker was written.
            self._lines.put((time.monotonic(), raw.decode().split()))
        self._lines.put(None)

    def _next(self, timeout: float) -> tuple[float, list[str]]:
        try:
            item = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"run server silent for {timeout:.0f}s; see {self.log_path}") from None
        if item is None:
            raise AssertionError(f"run server exited ({self.process.poll()}); see {self.log_path}")
        return item

    def run(self, asset: str, partition: str | None = None, kill: Kill | None = None) -> RunOutcome:
        """Materialize `asset` (one partition) in a new worker; kill it as `kill` says."""
        self.process.stdin.write((json.dumps({"asset": asset, "partition": partition}) + "\n").encode())
        self.process.stdin.flush()
        deadline = time.monotonic() + RUN_TIMEOUT
        pid, pidfd, kill_sent = None, None, False
        seen: dict[int, dict[str, tuple[float, list[str]]]] = defaultdict(dict)
        try:
            while True:
                at, words = self._next(max(deadline - time.monotonic(), 0.1))
                sender, word, detail = int(words[0]), words[1], words[2:]
                if word == "started":
                    pid = sender
                    if kill:
                        # A pidfd names this very process, so a signal sent after it ended cannot
                        # reach another that reused its pid. Opened at once: a worker takes a fifth
                        # of a second to its first marker, and cannot be reaped before it ends.
                        with contextlib.suppress(ProcessLookupError):  # ended already: exit says how
                            pidfd = os.pidfd_open(sender)
                else:
                    seen[sender][word] = (at, detail)
                if pid is None:
                    continue
                mine = seen[pid]
                if kill and not kill_sent and kill.after in mine:
                    kill.wait(mine[kill.after][0], quiet=self._lines.empty)
                    with contextlib.suppress(ProcessLookupError):  # it finished first: its exit says so
                        if pidfd is not None:
                            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                    kill_sent = True
                if "exit" in mine:
                    _, done = mine.pop("done", (None, [None]))
                    _, exit_ = mine.pop("exit")
                    return RunOutcome(pid, {w: at for w, (at, _) in mine.items()}, done[0], " ".join(exit_))
        finally:
            if pidfd is not None:
                os.close(pidfd)

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self._log.close()


if __name__ == "__main__":
    serve()
