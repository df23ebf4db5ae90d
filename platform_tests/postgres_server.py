"""A throwaway PostgreSQL server for tests: Debian's binaries, a temp cluster, password auth.

    with postgres_server() as pg:
        pg.sql("CREATE TABLE public.t (id int)")
        ... connect to pg.host:pg.port as pg.user / pg.password (scram-sha-256; it holds a quote and
            a space, so clients must quote it properly) ...
        pg.stop(); pg.start()  # fault injection: the same cluster goes away and comes back

The cluster lives in a fresh temp folder owned by the `postgres` OS user (initdb refuses to
run as root, so when the tests run as root the server commands go through `runuser`). The
server listens on 127.0.0.1 at a free port and on a unix socket inside the temp folder. The
`postgres` superuser may only connect through that socket (trust, used by `sql()` for seeding);
TCP clients must authenticate with a password, like the platform does in production.
Missing binaries fail loudly: `make system-deps` installs Debian's `postgresql` package.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_GLOB = "/usr/lib/postgresql/*/bin/initdb"
START_TIMEOUT_SECONDS = 60


def postgres_bin_dir() -> Path:
    found = sorted(glob.glob(PG_GLOB), key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if not found:
        pytest.fail(
            f"PostgreSQL server binaries not found ({PG_GLOB}). Install Debian's `postgresql` package: "
            "`make system-deps` (as root) or `sudo apt-get install postgresql`.",
            pytrace=False,
        )
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    bin_dir: Path
    root: Path
    port: int
    user: str
    password: str
    db: str
    host: str = "127.0.0.1"

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

    def _as_postgres(self, *cmd: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run(
            [*prefix, *cmd],
            check=check,
            capture_output=True,
            text=True,
            input=input,
            timeout=START_TIMEOUT_SECONDS + 30,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        result = self._as_postgres(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            str(START_TIMEOUT_SECONDS),
            "-o",
            options,
            "start",
            check=False,
        )
        if result.returncode != 0:
            log = self.log_file.read_text() if self.log_file.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {result.stdout}{result.stderr}\n{log[-3000:]}")

    def stop(self) -> None:
        self._as_postgres(
            str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop", check=False
        )

    def sql(self, statements: str, db: str | None = None) -> str:
        """Run SQL as the superuser over the unix socket (seeding and fault injection only)."""
        result = self._as_postgres(
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
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr}")
        return result.stdout


@contextlib.contextmanager
def postgres_server(db: str = "shop", user: str = "ml_reader") -> Iterator[PostgresServer]:
    bin_dir = postgres_bin_dir()
    # Not under pytest's tmp_path: its parents are private to root, and the server runs as `postgres`.
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
        result = server._as_postgres(
            str(bin_dir / "initdb"),
            "-D",
            str(server.data_dir),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed: {result.stdout}{result.stderr}")
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


# The payments table the PostgreSQL source reads (as `ml_reader`), as the tests create it.
TRANSACTIONS_SCHEMA = """
DROP TABLE IF EXISTS public.transactions;
CREATE TABLE public.transactions (
  transaction_id text PRIMARY KEY,
  user_id text NOT NULL,
  amount numeric(12, 2) NOT NULL,
  currency text NOT NULL,
  status text NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  deleted_at timestamptz
);
GRANT SELECT ON public.transactions TO ml_reader;
"""
