"""`make dev`'s payments database (`python -m ml_platform.demo.payments_db`) and the demo's first day.

The database is a real PostgreSQL server holding the demo's payments: the transactions source reads
them into exactly the rows `ml_platform.demo.transactions.expected` states; on SIGTERM it stops and
leaves no server, cluster or connection file behind; without PostgreSQL's binaries it says why the
source stays idle and exits 3 at once.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import Runner
from ml_platform.declarations.sources.transactions import CURRENCIES, STATUSES
from ml_platform.demo import generate
from ml_platform.demo.dimensions import MIN_USERS, user_id
from ml_platform.demo.manifest import main as manifest_main
from ml_platform.demo.transactions import demo_transactions, expected
from platform_server import process_group_alive
from postgres_server import cluster_on_port, postgres_bin_dir

FIRST, LAST = dt.date(2026, 11, 18), dt.date(2026, 11, 20)
START_TIMEOUT = 90.0


def test_demo_payments_are_deterministic_valid_and_counted():
    rows = demo_transactions(7, FIRST, LAST)
    assert rows == demo_transactions(7, FIRST, LAST)
    assert rows != demo_transactions(8, FIRST, LAST)
    assert len(rows) == 3 * 40 and len({r.transaction_id for r in rows}) == len(rows)
    assert {r.currency for r in rows} <= set(CURRENCIES) and {r.status for r in rows} <= set(STATUSES)
    assert all(r.amount > 0 for r in rows)
    # Users every snapshot holds; each created on its day, changed no later than the last day's end.
    assert {r.user_id for r in rows} <= {user_id(i) for i in range(1, MIN_USERS + 1)}
    end = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
    assert all(FIRST <= r.created_at.date() <= LAST and r.created_at <= r.updated_at < end for r in rows)
    assert all(r.deleted_at in (None, r.updated_at) for r in rows)
    assert all(r.updated_at > r.created_at for r in rows if r.status == "refunded" or r.deleted_at)
    counts = expected(rows)
    deleted = sum(r.deleted_at is not None for r in rows)
    assert counts["rows"] == 120 and counts["deleted"] == deleted and counts["clean"] == 120 - deleted
    assert sum(counts["clean_by_day"].values()) == counts["clean"]
    assert set(counts["clean_by_day"]) == {"2026-11-18", "2026-11-19", "2026-11-20"}
    # The seed gives some of every kind of change.
    assert deleted > 0 and counts["refunded"] > 0


def test_the_first_day_is_the_demos_first_landing_day(data_dir, capsys):
    assert manifest_main(["first-day", str(data_dir)]) == 0
    assert capsys.readouterr().out == ""  # no demo: nothing, the default start stays
    generate(data_dir, days=2, events_per_day=50, seed=3, end_date=LAST, telemetry_hours_per_day=1)
    assert manifest_main(["first-day", str(data_dir)]) == 0
    assert capsys.readouterr().out == "2026-11-19\n"


def _serve(data_dir: Path, env_file: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ml_platform.demo.payments_db",
            "--data-dir",
            str(data_dir),
            "--env-file",
            str(env_file),
        ],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _read_env(path: Path) -> dict[str, str]:
    """The `export NAME=value` lines as a shell reads them."""
    variables = {}
    for line in path.read_text().splitlines():
        [assignment] = shlex.split(line.removeprefix("export "))
        name, value = assignment.split("=", 1)
        variables[name] = value
    return variables


def test_the_payments_database_serves_the_demo_and_leaves_nothing_behind(data_dir, tmp_path, instance, monkeypatch):
    postgres_bin_dir()  # fails, naming the package, without the binaries
    manifest = generate(data_dir, days=3, events_per_day=50, seed=5, end_date=LAST, telemetry_hours_per_day=1)
    env_file = tmp_path / "payments_db.env"
    server = _serve(data_dir, env_file)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not env_file.exists():
            assert server.poll() is None, server.communicate()
            assert time.monotonic() < deadline, "no connection file"
            time.sleep(0.1)
        assert env_file.stat().st_mode & 0o777 == 0o600
        env = _read_env(env_file)
        assert set(env) == {f"ML_PLATFORM_PG_{k}" for k in ("HOST", "PORT", "DB", "USER", "PASSWORD")}
        assert (env["ML_PLATFORM_PG_HOST"], env["ML_PLATFORM_PG_DB"], env["ML_PLATFORM_PG_USER"]) == (
            "127.0.0.1",
            "payments",
            "ml_reader",
        )
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        from ml_platform.definitions import build_definitions

        runner = Runner(build_definitions(), instance, data_dir)
        days = (manifest["start_date"], manifest["end_date"])
        runner.run("raw_transactions", "clean_transactions", range_=days)
        counts = expected(demo_transactions(5, FIRST, LAST))
        assert runner.query("SELECT count(*) FROM raw_transactions") == [(counts["rows"],)]
        assert (
            dict(
                runner.query(
                    "SELECT strftime(transaction_date, '%Y-%m-%d'), count(*) FROM clean_transactions GROUP BY 1"
                )
            )
            == counts["clean_by_day"]
        )
        assert runner.query("SELECT count(*) FROM clean_transactions WHERE status = 'refunded'") == [
            (counts["refunded"],)
        ]
        assert runner.query("SELECT count(*) FROM quarantine_transactions") == [(0,)]
        cluster = cluster_on_port(env["ML_PLATFORM_PG_PORT"])
        assert cluster.is_dir()
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert out.startswith(
        f"payments database on 127.0.0.1:{env['ML_PLATFORM_PG_PORT']}/payments (PostgreSQL): "
        f"{counts['rows']} demo transactions created 2026-11-18..2026-11-20 ({counts['deleted']} soft-deleted)"
    )
    assert not env_file.exists()
    # The server (a child in the helper's group) and its cluster folder are gone.
    assert not process_group_alive(server.pid)
    assert cluster_on_port(env["ML_PLATFORM_PG_PORT"]) is None
    assert not cluster.exists()


def test_without_postgres_binaries_it_says_why_the_source_is_idle(data_dir, tmp_path):
    env_file = tmp_path / "payments_db.env"
    server = _serve(data_dir, env_file, ML_PLATFORM_POSTGRES_BIN_DIR=str(tmp_path / "no-postgres"))
    out, err = server.communicate(timeout=60)
    assert server.returncode == 3
    assert out == ""
    assert err == (
        "No payments database, so the transactions source stays idle (its change sensor skips: ML_PLATFORM_PG_* "
        f"not set). PostgreSQL server binaries not found: no initdb in ML_PLATFORM_POSTGRES_BIN_DIR={tmp_path}"
        "/no-postgres\n"
    )
    assert not env_file.exists()
