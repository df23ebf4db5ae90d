"""The demo's payments database: a local PostgreSQL server holding the demo's transactions, for `make dev`.

    python -m ml_platform.demo.payments_db --data-dir data --env-file .dagster_home/payments_db.env

starts a fresh PostgreSQL cluster (`ml_platform.demo.postgres`) on a free port of 127.0.0.1, creates
the `payments` database with the `public.transactions` table, loads the demo's payments for its
landing days (`ml_platform.demo.transactions`, from the seed and days in `<data>/demo_manifest.json`;
without a demo the table stays empty) and writes the source's connection variables
(`ML_PLATFORM_PG_HOST` … `_PASSWORD`, the password random per start) as shell `export` lines to
`--env-file` (mode 600), which `make dev` reads before it starts `dagster dev`. The file appears
once the server accepts connections.

It then runs until SIGTERM, SIGINT or SIGHUP, and on the way out stops the server and deletes the
cluster and the file: the data lives in the demo's files and the seed, so the next start loads the
same rows (the raw table already holds them and the change sensor's cursor is past them: nothing
is extracted twice). The server is this process's child, in its process group: a Ctrl-C or a kill
of `make dev`'s process group stops it too.

Without PostgreSQL's binaries it prints why the transactions source stays idle and how to install
them, and exits with status 3; `make dev` goes on without the source.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time
from pathlib import Path

from ml_platform.demo.manifest import first_day, last_day, read_manifest
from ml_platform.demo.postgres import PostgresUnavailable, postgres_server
from ml_platform.demo.transactions import TRANSACTIONS_SCHEMA, demo_transactions, expected, insert_sql

DB = "payments"
READER = "ml_reader"  # TRANSACTIONS_SCHEMA grants it SELECT
UNAVAILABLE = 3


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
POLL_SECONDS = 0.5


class _Stop(Exception):
    pass


def _stop(signum, frame):
    # Once: a second signal (make's trap after a Ctrl-C) must not cut the cleanup short.
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise _Stop(signal.Signals(signum).name)


def _write_env(path: Path, env: dict[str, str]) -> None:
    """Shell `export` lines, written whole (a reader never sees half a file) and readable by the owner only."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.writelines(f"export {name}={shlex.quote(value)}\n" for name, value in env.items())
    os.replace(tmp, path)


def serve(data_dir: Path, env_file: Path) -> int:
    manifest = read_manifest(data_dir)
    if manifest is None:
        rows, what = [], f"no demo in {data_dir}: the transactions table is empty"
    else:
        first, last = first_day(manifest), last_day(manifest)
        rows = demo_transactions(manifest["seed"], first, last)
        counts = expected(rows)
        what = f"{counts['rows']} demo transactions created {first}..{last} ({counts['deleted']} soft-deleted)"
    env_file.unlink(missing_ok=True)
    # Handlers first: a stop that arrives while the cluster is being made still removes it. (A
    # background job of a non-interactive shell starts with SIGINT ignored; this takes it back.)
    for sig in STOP_SIGNALS:
        signal.signal(sig, _stop)
    try:
        with postgres_server(db=DB, user=READER) as pg:
            pg.sql(TRANSACTIONS_SCHEMA + insert_sql(rows))
            _write_env(env_file, pg.env())
            print(f"payments database on {pg.host}:{pg.port}/{DB} (PostgreSQL): {what}", flush=True)
            try:
                while pg.running():
                    time.sleep(POLL_SECONDS)
                print(f"payments database: PostgreSQL exited; see {pg.log_file}", file=sys.stderr, flush=True)
                return 1
            finally:
                env_file.unlink(missing_ok=True)
    except PostgresUnavailable as exc:
        print(
            f"No payments database, so the transactions source stays idle (its change sensor skips: "
            f"ML_PLATFORM_PG_* not set). {exc}",
            file=sys.stderr,
            flush=True,
        )
        return UNAVAILABLE
    except _Stop:
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("ML_PLATFORM_DATA_DIR", "data")))
    parser.add_argument("--env-file", type=Path, required=True, help="where the connection variables go")
    args = parser.parse_args(argv)
    return serve(args.data_dir, args.env_file)


if __name__ == "__main__":
    sys.exit(main())
