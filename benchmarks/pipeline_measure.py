"""Runs one command and measures it as a user would feel it: wall time, CPU time and peak memory.

The command runs in a process group of its own. Every `interval` seconds the sampler walks /proc
for the whole process tree (Dagster's CLI starts helpers; a run may fork) and sums its resident
memory: that sum's peak is what the machine had to hold. The largest single process's peak and
the CPU time (user + system) of the tree come from the kernel's own accounting when the command
is reaped (`wait4`), so they are exact rather than sampled. No dependency beyond the standard
library: /proc is read directly instead of through psutil.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024


@dataclass
class Measure:
    wall_s: float
    cpu_s: float
    peak_tree_rss_mib: float
    peak_process_rss_mib: float
    returncode: int

    def as_dict(self) -> dict:
        return asdict(self)


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def tree_rss_bytes(root: int) -> int:
    """Resident memory of `root` and all its descendants, now."""
    children = _children_map()
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, ()))
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


def run(cmd: list[str], env: dict[str, str] | None = None, interval: float = 0.1, log: Path | None = None) -> Measure:
    """Run `cmd` to completion (output to `log`, or discarded) and return its measure."""
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (closed below)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss_bytes(proc.pid))
            done.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        # Interrupted: stop the command's whole group, which we started, and nothing else.
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    sampler.join()
    if log:
        out.close()
    # A helper the command left behind would keep its group alive; it is ours, so stop it.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    return Measure(
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_tree_rss_mib=peak / MIB,
        peak_process_rss_mib=usage.ru_maxrss / 1024,  # KiB on Linux
        returncode=proc.returncode,
    )
