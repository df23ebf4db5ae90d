"""A real Redis server for development and tests: Debian's `redis-server`, its own folder and port.

    with redis_server() as server:      # a fresh server in a temp folder, on a free port
        server.url                      # "redis://127.0.0.1:<port>/0"
        server.stop(); server.start()   # fault injection: the same server goes away and comes back

The server runs in the foreground of its own process group, bound to 127.0.0.1 only, with its
files in its folder; it keeps no snapshot (`save ""`, no append-only file) unless `persistent`,
so a test server leaves nothing behind. Stopping sends SIGTERM to the group and SIGKILL after a
bound; the server also dies with the process that started it (Linux's parent-death signal).

`python -m ml_platform.demo.redis_server --port 6380 --data-dir data/redis` runs one until SIGTERM
or Ctrl-C, with snapshots in its folder (`make dev` does). `missing_reason()` says when `redis-server`
is not installed (`make system-deps` installs Debian's package); `--check` only says that.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ml_platform.demo.server_process import free_port, spawn, stop_group

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
# Exit status of the command line when no redis-server is installed.
CANNOT_RUN = 3


def missing_reason() -> str | None:
    """Why a Redis server cannot start here, or None."""
    if shutil.which("redis-server") is None:
        return "no redis-server on PATH (Debian: apt-get install redis-server, or `make system-deps` as root)"
    return None


@dataclass
class RedisServer:
    root: Path
    port: int
    persistent: bool = False
    die_with_parent: bool = True
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_file(self) -> Path:
        return self.root / "redis.log"

    def _command(self) -> list[str]:
        command = [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.root),
            "--daemonize",
            "no",
            "--logfile",
            str(self.log_file),
            "--protected-mode",
            "yes",
        ]
        if not self.persistent:
            command += ["--save", "", "--appendonly", "no"]
        return command

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self.process = spawn(
            self._command(), cwd=self.root, stdout=subprocess.DEVNULL, with_parent=self.die_with_parent
        )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        import redis

        deadline = time.monotonic() + timeout
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        try:
            while True:
                if self.process.poll() is not None:
                    log = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
                    raise RuntimeError(f"redis-server exited with {self.process.returncode}: {log}")
                with contextlib.suppress(redis.ConnectionError, redis.BusyLoadingError):
                    if client.ping():
                        return
                if time.monotonic() > deadline:
                    self.stop(hard=True)
                    raise RuntimeError(f"redis-server did not answer within {timeout:.0f}s")
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self, hard: bool = False) -> None:
        if self.process is None:
            return
        stop_group(self.process, STOP_TIMEOUT_SECONDS, hard)
        self.process = None


@contextlib.contextmanager
def redis_server(root: Path | None = None, port: int | None = None) -> Iterator[RedisServer]:
    """A started server in `root` (a new temp folder, removed afterwards, when None)."""
    reason = missing_reason()
    if reason:
        raise RuntimeError(f"cannot start Redis: {reason}")
    temporary = root is None
    root = Path(tempfile.mkdtemp(prefix="ml-platform-redis-")) if temporary else root
    server = RedisServer(root, port or free_port(), persistent=not temporary)
    try:
        server.start()
        yield server
    finally:
        server.stop(hard=temporary)
        if temporary:
            shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ml_platform.demo.redis_server", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--port", type=int, default=6379)
    parser.add_argument("--data-dir", type=Path, help="the server's folder (its snapshot is kept)")
    parser.add_argument(
        "--check", action="store_true", help="only say whether a server can start here (exit 0) or why not (exit 3)"
    )
    args = parser.parse_args(argv)
    reason = missing_reason()
    if reason:
        print(
            f"Redis not started: {reason}; the online store stays off and online lookups read the warehouse",
            file=sys.stderr,
            flush=True,
        )
        return CANNOT_RUN
    if args.check:
        return 0
    if args.data_dir is None:
        parser.error("--data-dir is required to run a server")
    stop = [False]

    def _stop(*_):
        stop[0] = True

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop)
    server = RedisServer(args.data_dir.resolve(), args.port, persistent=True)
    server.start()
    print(f"Redis on {server.url} (data in {server.root})", flush=True)
    try:
        while not stop[0] and server.process.poll() is None:
            time.sleep(0.5)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
