"""The run launcher of `dagster dev` (dagster.yaml): runs start as forks, and run monitoring can tell when one died.

Two things on top of Dagster's `DefaultRunLauncher`:

Runs start fast. With `fork_runs` (the default), a run is a fork of a process that has already
imported Dagster and the libraries runs use (`ml_platform.runs.forks`), instead of a fresh Python
spawned by the code server that imports them again (about 2 s of CPU per run). Terminating such a
run from the UI sends its process SIGTERM, which Dagster turns into a canceled run, as it does for
a run of the code server (repeated while the process lives: see `interrupt_until_gone`). `fork_runs: false` gives Dagster's own launching back.

A dead run is seen. `DefaultRunLauncher` cannot tell Dagster's run monitoring whether a run's
process is still alive. A run whose process is killed (`kill -9`, the OOM killer, a crash or hard
stop of `dagster dev`, a reboot) then stays "started" forever. It keeps holding the `duckdb`
pool's only slot, so every later run that writes the warehouse queues behind it, and the
automation condition waits on the partition it was writing: the platform stalls, and the files
its landing run was to ingest are never ingested (the sensor has used their run key).

`LocalRunLauncher` answers the health check from the run's own process: the pid that recorded
the run's start, alive on this machine and not reused by a younger process. dagster.yaml turns
on run monitoring with it, so a run whose process is gone is marked failed within seconds, its
pool slot is freed, and run retries start it again (only runs that failed this way: a failed
asset or check is not retried). Everything here runs where `dagster dev` runs, so the pid is
local. `platform_tests/test_exactly_once.py` proves it with a hard stop in the middle of a burst.

Runs can also share nothing local (`run_directories`): each run is then a fresh process
(`dagster api execute_run`, as in an ECS task or a pod) whose working directory and data folder
(`ML_PLATFORM_DATA_DIR`) is a new folder of its own, so its warehouse file is its own, made from the
catalog. The deployed topology on one machine (`make scale-demo`): with the landing and the lake on
S3 and the catalog in PostgreSQL, runs share only those two, as ECS tasks would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from dagster import (
    DagsterEventType,
    DagsterRun,
    DagsterRunStatus,
    DefaultRunLauncher,
    Field,
    StringSource,
    serialize_value,
)

from ml_platform import dagster_private
from ml_platform.dagster_private import GRPC_INFO_TAG, CheckRunHealthResult, LaunchRunContext, WorkerStatus
from ml_platform.runs import forks as run_forks

# A process that started this long after the run recorded its start is not the run's (which
# started before): the pid was reused. The start is computed in wall-clock time from the boot
# time, so the slack absorbs a clock stepped while the run ran (NTP, a resumed VM); wrongly
# failing a live run would be worse than waiting longer for a dead one whose pid was reused.
START_TIME_SLACK_SECONDS = 300.0
TERMINATE_RESEND_SECONDS = 2.0
TERMINATE_TIMEOUT_SECONDS = 60.0
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


def process_alive(pid: int, started_by: float) -> bool:
    """Whether `pid` is a live (not zombie) process that existed at `started_by` (epoch seconds).

    Without /proc (not Linux) only existence is checked."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: the pid was reused
        return False
    try:
        # Fields after the command name (which may hold spaces): state is the 3rd field of the
        # line, start time (clock ticks after boot) the 22nd.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(
            int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime ")
        )
    except (OSError, StopIteration, IndexError, ValueError):
        return True
    if fields[0] in ("Z", "X"):  # exited, not yet reaped by its parent
        return False
    started = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return started <= started_by + START_TIME_SLACK_SECONDS


def interrupt_until_gone(pid: int, started_at: float) -> None:
    """SIGTERM the run's process now and again every `TERMINATE_RESEND_SECONDS` while it lives (for
    at most `TERMINATE_TIMEOUT_SECONDS`). Dagster turns an interrupt inside a step that has a retry
    policy (the API sources' steps) into a retry, so one signal would only postpone such a run;
    the next one interrupts the wait for the retry, and the run ends canceled."""
    deadline = time.monotonic() + TERMINATE_TIMEOUT_SECONDS
    while process_alive(pid, started_at) and time.monotonic() < deadline:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        time.sleep(TERMINATE_RESEND_SECONDS)


class LocalRunLauncher(DefaultRunLauncher):
    """`DefaultRunLauncher` whose runs start as forks and whose runs' processes are checked by run monitoring."""

    def __init__(self, inst_data=None, fork_runs: bool = True, run_directories: str | None = None):
        super().__init__(inst_data=inst_data)
        self._fork_runs = fork_runs
        self._run_directories = Path(run_directories) if run_directories else None
        self._processes: list[subprocess.Popen] = []

    @classmethod
    def config_type(cls):
        return {
            "fork_runs": Field(
                bool, is_required=False, default_value=True, description="Start runs as forks (ml_platform.runs.forks)."
            ),
            "run_directories": Field(
                StringSource,
                is_required=False,
                description="Run each run as a fresh process in a new folder of its own under this one, its"
                " working directory and data folder: runs share nothing local (storage and catalog elsewhere).",
            ),
        }

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(inst_data=inst_data, **config_value)

    def launch_run(self, context: LaunchRunContext) -> None:
        if not self._fork_runs and self._run_directories is None:
            return super().launch_run(context)
        run = context.dagster_run
        if run.job_code_origin is None:
            raise ValueError(f"run {run.run_id} has no code origin to execute")
        args = serialize_value(
            dagster_private.ExecuteRunArgs(run.job_code_origin, run.run_id, instance_ref=self._instance.get_ref())
        )
        if self._run_directories is not None:
            self._start_in_own_directory(run.run_id, args)
        else:
            run_forks.start_run(args)

    def _start_in_own_directory(self, run_id: str, args: str) -> None:
        """The run as `dagster api execute_run` in a new folder `<run_directories>/<run_id>`, its
        working directory and data folder; its output goes to `run.log` there."""
        self._processes = [process for process in self._processes if process.poll() is None]  # reaped
        folder = self._run_directories / run_id
        folder.mkdir(parents=True)
        with (folder / "run.log").open("ab") as log:  # the child keeps its own descriptor
            self._processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "dagster", "api", "execute_run", args],
                    cwd=folder,
                    env={**os.environ, "ML_PLATFORM_DATA_DIR": str(folder)},
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return False
        if GRPC_INFO_TAG in run.tags:  # launched by the code server: it cancels its own runs
            return super().terminate(run_id)
        self._instance.report_run_canceling(run)
        started = self._started(run)
        if started is None or not process_alive(*started):
            # The fork has not recorded the run's start (it is still importing) or is gone. Marked
            # canceled, the run is never started: Dagster checks the status before executing.
            self._instance.report_run_canceled(run, message="Canceled before its process started the run.")
            started = self._started(run)  # unless the fork recorded its start in between
        if started is not None and process_alive(*started):
            threading.Thread(target=interrupt_until_gone, args=started, name="terminate-run", daemon=True).start()
        return True

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def _started(self, run: DagsterRun) -> tuple[int, float] | None:
        """The pid that recorded the run's start and when, None before the start (or without a pid)."""
        records = self._instance.get_records_for_run(run.run_id, of_type=DagsterEventType.RUN_START, limit=1).records
        if not records or records[0].event_log_entry.dagster_event is None:
            return None
        entry = records[0].event_log_entry
        pid = entry.dagster_event.pid
        return None if pid is None else (pid, entry.timestamp)

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        instance = self._instance
        started = self._started(run)
        if started is None:
            # Not started yet: run monitoring's start timeout covers a launch that never starts.
            return CheckRunHealthResult(WorkerStatus.RUNNING, "run has not recorded its start yet")
        pid = started[0]
        if process_alive(*started):
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"process {pid} is alive", run_worker_id=str(pid))
        # The process may have recorded the run's end and exited since monitoring listed the run.
        latest = instance.get_run_by_id(run.run_id)
        if latest is not None and latest.status in FINISHED:
            return CheckRunHealthResult(WorkerStatus.SUCCESS, f"run ended ({latest.status.value})")
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"the run's process {pid} is gone without recording the run's end (killed, or dagster dev was stopped)",
            run_worker_id=str(pid),
        )
