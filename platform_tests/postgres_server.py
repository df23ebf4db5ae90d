"""The tests' PostgreSQL server: `ml_platform.demo.postgres` (the one `make dev` runs), failing the test
loudly when the binaries are missing (`make system-deps` installs Debian's `postgresql` package).

    with postgres_server() as pg:
        pg.sql(TRANSACTIONS_SCHEMA + "INSERT INTO public.transactions VALUES (...);")
        monkeypatch.setenv(...) for each of pg.env().items()
        pg.stop(); pg.start()  # fault injection: the same cluster goes away and comes back
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ml_platform.demo import postgres as _server
from ml_platform.demo.postgres import PostgresServer, PostgresUnavailable
from ml_platform.demo.transactions import TRANSACTIONS_SCHEMA

__all__ = ["PostgresServer", "TRANSACTIONS_SCHEMA", "cluster_on_port", "postgres_bin_dir", "postgres_server"]


def _free_port() -> int:
    """A free TCP port on 127.0.0.1 (the S3 test server uses it too)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin_dir():
    try:
        return _server.postgres_bin_dir()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@contextlib.contextmanager
def postgres_server(db: str = "shop", user: str = "ml_reader") -> Iterator[PostgresServer]:
    postgres_bin_dir()  # fails the test, naming the package, before anything is created
    with _server.postgres_server(db=db, user=user) as server:
        yield server


def cluster_on_port(port: str | int) -> Path | None:
    """The cluster folder of the PostgreSQL server listening on `port` (from its command line), or
    None when no server runs there: how a test finds a server another process started."""
    for line in subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True).stdout.splitlines():
        args = line.split()
        if args and args[0].endswith("/postgres") and "-p" in args and args[args.index("-p") + 1] == str(port):
            return Path(args[args.index("-D") + 1]).parent
    return None
