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
from collections.abc import Iterator

import pytest

from ml_platform.demo import postgres as _server
from ml_platform.demo.postgres import PostgresServer, PostgresUnavailable
from ml_platform.demo.transactions import TRANSACTIONS_SCHEMA

__all__ = ["PostgresServer", "TRANSACTIONS_SCHEMA", "postgres_bin_dir", "postgres_server"]


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
