"""One contender per process, driven line by line, so that runs can be interleaved.

This machine class is shared with other work, whose load comes and goes. Timing contenders one
after the other would let a busy minute land on one of them only; instead each contender lives
in a worker process of its own, set up once, and the parent asks the workers in turn for one run
each, round after round. Every contender then sees the same mix of quiet and busy moments, and
each process's peak RSS is still that contender's own.

Protocol, JSON lines: the worker sends its setup facts; then answers each `run` with the
seconds it took and `finish` with its peak RSS, after writing its last output to
`out_<name>.parquet` in the work directory. Libraries' own prints go to the worker's log.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from pit_contenders import CONTENDERS
from pit_data import FEATURES, Inputs


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _protocol_stream() -> IO[str]:
    """The real stdout, kept for the protocol; fd 1 then points at stderr (the log)."""
    stream = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    return stream


def serve(name: str, inputs: Inputs, ttl: dt.timedelta, options: dict) -> int:
    """The worker's side: set up, then run or finish on request."""
    out = _protocol_stream()

    def send(message: dict) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    start = time.perf_counter()
    prepared = CONTENDERS[name].setup(inputs, ttl, options)
    send({"setup_s": time.perf_counter() - start, "setup_rss_mib": rss_mib(), "setup_notes": prepared.notes})
    output = None
    for line in sys.stdin:
        if line.strip() == "run":
            start = time.perf_counter()
            output = prepared.run()
            send({"s": time.perf_counter() - start})
        elif line.strip() == "finish":
            if output is not None:
                output[["row_id", *FEATURES]].to_parquet(options["work_dir"] / f"out_{name}.parquet")
            send({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})  # KiB on Linux
            break
    return 0


class WorkerFailed(RuntimeError):
    pass


class Worker:
    """The parent's side: a contender's process, asked for one thing at a time."""

    def __init__(self, name: str, command: list[str], work_dir: Path):
        self.name = name
        self.log = work_dir / f"log_{name}.txt"
        # No usage statistics from Feast: the benchmark makes no network calls.
        env = {**os.environ, "FEAST_USAGE": "False"}
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=env
            )
        self.setup = self._receive()

    def ask(self, command: str) -> dict:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._receive()

    def _receive(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            tail = self.log.read_text().strip().splitlines()[-15:]
            raise WorkerFailed(f"exit {self.process.returncode}: " + "\n".join(tail))
        return json.loads(line)

    def finish(self) -> dict:
        result = self.ask("finish")
        self.process.wait()
        return result

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
