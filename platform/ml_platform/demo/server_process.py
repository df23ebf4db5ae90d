"""How the local servers of development and tests run as processes (the Kafka broker, Redis).

Each server is a child in a process group of its own, so a stop reaches everything it started;
`spawn` starts it so, and (unless told otherwise) Linux's parent-death signal kills it when the
process that started it dies, so a killed test leaves no server behind. `stop_group` stops the
group: SIGTERM for a clean shutdown (SIGKILL after a bound), or SIGKILL at once. `free_port` is a
port nothing listens on now.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent() -> None:
    """In the child, before exec: SIGKILL it when the process that started it dies (Linux prctl)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def spawn(command: list[str], *, cwd, stdout, with_parent: bool = True) -> subprocess.Popen:
    """`command` in a new process group (stdin closed, stderr with stdout); see the module docstring."""
    return subprocess.Popen(
        command,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=die_with_parent if with_parent else None,
    )


def stop_group(process: subprocess.Popen, timeout: float, hard: bool = False) -> None:
    """SIGTERM to `process`'s group, SIGKILL if it has not exited within `timeout` (at once with
    `hard`), then wait for it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL if hard else signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)
