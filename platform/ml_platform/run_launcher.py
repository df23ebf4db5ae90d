"""The run launcher of `dagster dev` (dagster.yaml): Dagster's own, plus telling when a run's process died.

`DefaultRunLauncher` runs each run in a process started by the code server, and cannot tell
Dagster's run monitoring whether that process is still alive. A run whose process is killed
(`kill -9`, the OOM killer, a crash or hard stop of `dagster dev`, a reboot) then stays
"started" forever. It keeps holding the `duckdb` pool's only slot, so every later run that
writes the warehouse queues behind it, and the automation condition waits on the partition it
was writing: the platform stalls, and the files its landing run was to ingest are never
ingested (the sensor has used their run key).

`LocalRunLauncher` answers the health check from the run's own process: the pid that recorded
the run's start, alive on this machine and not reused by a younger process. dagster.yaml turns
on run monitoring with it, so a run whose process is gone is marked failed within seconds, its
pool slot is freed, and run retries start it again (only runs that failed this way: a failed
asset or check is not retried). Everything here runs where `dagster dev` runs, so the pid is
local. `platform_tests/test_exactly_once.py` proves it with a hard stop in the middle of a burst.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import DagsterRun, DagsterRunStatus, DefaultRunLauncher
from dagster._core.events import DagsterEventType
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus

# A process that started this long after the run recorded its start is not the run's (which
# started before): the pid was reused. The start is computed in wall-clock time from the boot
# time, so the slack absorbs a clock stepped while the run ran (NTP, a resumed VM); wrongly
# failing a live run would be worse than waiting longer for a dead one whose pid was reused.
START_TIME_SLACK_SECONDS = 300.0
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


class LocalRunLauncher(DefaultRunLauncher):
    """`DefaultRunLauncher` whose runs' processes are checked by run monitoring."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        instance = self._instance
        records = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.RUN_START, limit=1).records
        if not records or records[0].event_log_entry.dagster_event is None:
            # Not started yet: run monitoring's start timeout covers a launch that never starts.
            return CheckRunHealthResult(WorkerStatus.RUNNING, "run has not recorded its start yet")
        entry = records[0].event_log_entry
        pid = entry.dagster_event.pid
        if pid is None:
            return CheckRunHealthResult(WorkerStatus.UNKNOWN, "run start recorded no process id")
        if process_alive(pid, entry.timestamp):
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
