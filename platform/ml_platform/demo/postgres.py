"""A local PostgreSQL server from the system's binaries: `make dev`'s payments database and the tests' own.

    with postgres_server(db="payments") as pg:
        pg.sql("CREATE TABLE public.t (id int)")
        ... connect to pg.host:pg.port as pg.user / pg.password (scram-sha-256; it holds a quote and
            a space, so clients must quote it properly) ...
        pg.stop(); pg.start()  # fault injection: the same cluster goes away and comes back

The cluster lives in a fresh temp folder owned by the `postgres` OS user when run as root (initdb
and the server refuse to run as root), and is removed on exit. The server listens on 127.0.0.1 at a
free port and on a unix socket inside the temp folder. The `postgres` superuser may only connect
through that socket (trust, used by `sql()` for seeding); TCP clients must authenticate with a
password, like the platform does in production.

The server process is a child of the caller, in the caller's process group (not detached the way
`pg_ctl start` detaches it): whatever stops the caller's group (Ctrl-C in `make dev`, a test
harness killing its process tree) stops the server too, and a caller killed outright leaves no
server behind.

The binaries are Debian's (`postgresql` package: /usr/lib/postgresql/<version>/bin, the newest
version); `ML_PLATFORM_POSTGRES_BIN_DIR` names another folder holding `initdb`, `postgres` and
`psql`. Missing binaries raise `PostgresUnavailable`, whose message says how to install them.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

PG_GLOB = "/usr/lib/postgresql/*/bin/initdb"
BIN_DIR_ENV = "ML_PLATFORM_POSTGRES_BIN_DIR"
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 15
# The 8th line of postmaster.pid is the server's state; `pg_ctl -w` waits for the same word.
READY_STATE = "ready"


class PostgresUnavailable(RuntimeError):
    """The server binaries are not installed; the message says where they were looked for and how to get them."""


def postgres_bin_dir() -> Path:
    """The folder of `initdb`, `postgres` and `psql`: `ML_PLATFORM_POSTGRES_BIN_DIR`, else Debian's newest."""
    configured = os.environ.get(BIN_DIR_ENV)
    if configured:
        if not (Path(configured) / "initdb").is_file():
            raise PostgresUnavailable(f"PostgreSQL server binaries not found: no initdb in {BIN_DIR_ENV}={configured}")
        return Path(configured)

    def version(path: str) -> int:
        number = Path(path).parts[-3]
        return int(number) if number.isdigit() else 0

    found = sorted(glob.glob(PG_GLOB), key=version)
    if not found:
        raise PostgresUnavailable(
            f"PostgreSQL server binaries not found ({PG_GLOB}). Install Debian's `postgresql` package: "
            "`make system-deps` (as root) or `sudo apt-get install postgresql`."
        )
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres_user() -> dict:
    """subprocess arguments that run a command as the `postgres` OS user when we are root."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


@dataclass
class PostgresServer:
    bin_dir: Path
    root: Path
    port: int
    user: str
    password: str
    db: str
    host: str = "127.0.0.1"
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sockets"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def env(self, prefix: str = "ML_PLATFORM_PG") -> dict[str, str]:
        """The connection variables the platform's PostgreSQL sources read."""
        return {
            f"{prefix}_HOST": self.host,
            f"{prefix}_PORT": str(self.port),
            f"{prefix}_DB": self.db,
            f"{prefix}_USER": self.user,
            f"{prefix}_PASSWORD": self.password,
        }

    def _run(self, *cmd: str, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            cmd,
            check=False,
            capture_output=True,
            text=True,
            input=input,
            timeout=START_TIMEOUT_SECONDS + 30,
            # The postgres user may not enter the caller's folder (initdb warns, psql cannot start there).
            cwd=self.root,
            **_as_postgres_user(),
        )

    def initdb(self) -> None:
        result = self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed: {result.stdout}{result.stderr}")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the server and return once it accepts connections."""
        if self.running():
            raise RuntimeError("PostgreSQL is already running")
        with self.log_file.open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [
                    str(self.bin_dir / "postgres"),
                    "-D",
                    str(self.data_dir),
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.socket_dir),
                    "-c",
                    f"listen_addresses={self.host}",
                    "-c",
                    "fsync=off",
                ],
                stdin=subprocess.DEVNULL,
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                **_as_postgres_user(),
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log_text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
                raise RuntimeError(f"PostgreSQL did not start:\n{log_text[-3000:]}")
            time.sleep(0.05)

    def _ready(self) -> bool:
        """The server we started wrote its pid file and says it accepts connections."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[0].strip() == str(self.process.pid) and lines[7].strip() == READY_STATE

    def stop(self) -> None:
        """Stop at once (PostgreSQL's immediate shutdown, SIGQUIT), as a crash or a pulled cable would:
        open connections break mid-query. The cluster stays and `start()` brings it back."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        self.process = None

    def sql(self, statements: str, db: str | None = None) -> str:
        """Run SQL as the superuser over the unix socket (seeding and fault injection only)."""
        result = self._run(
            str(self.bin_dir / "psql"),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.socket_dir),
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            db or self.db,
            "-At",
            "-f",
            "-",
            input=statements,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr}")
        return result.stdout


@contextlib.contextmanager
def postgres_server(db: str = "shop", user: str = "ml_reader") -> Iterator[PostgresServer]:
    """A new cluster with a login role `user` (password auth over TCP) owning database `db`;
    stopped and deleted on exit."""
    bin_dir = postgres_bin_dir()
    # A temp folder, not under the caller's: the server runs as `postgres`, and pytest's tmp_path
    # (or a checkout under /root) has parents only root may enter.
    root = Path(tempfile.mkdtemp(prefix="ml-platform-pg-"))
    server = PostgresServer(
        bin_dir=bin_dir, root=root, port=_free_port(), user=user, password=f"pw '{secrets.token_hex(12)} x", db=db
    )
    try:
        server.socket_dir.mkdir()
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            for path in (root, server.socket_dir):
                os.chown(path, pg.pw_uid, pg.pw_gid)
        server.initdb()
        server.start()
        try:
            escaped = server.password.replace("'", "''")
            server.sql(
                f"CREATE ROLE {user} LOGIN PASSWORD '{escaped}';\nCREATE DATABASE {db} OWNER {user};", db="postgres"
            )
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
