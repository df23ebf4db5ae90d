"""Snapshot history is rebuilt from the first snapshot that changed, and equals a full rebuild.

Each step lands users snapshots (new days, a re-landed older day, a day before all others) and
runs `clean_users`; afterwards a copy of the warehouse rebuilds the whole history from every
snapshot, and both must hold exactly the same versions and quarantine. The raw rows a run reads
show that an ordinary new day reads only that day, whatever the history before it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil

import duckdb

from conftest import source_runner, write_landing
from helpers import run_metadata
from ml_platform import settings
from ml_platform.clean import snapshot_history
from ml_platform.clean.write import write_clean
from ml_platform.contracts.writer import scratch_tables
from ml_platform.declarations.sources.users import SPEC as USERS

HEADER = "user_id,signup_date,country,plan\n"
SNAPSHOTS = {
    "2026-11-02": {"u1": "DE,free", "u2": "US,pro", "u3": "FR,free"},
    "2026-11-03": {"u1": "DE,plus", "u2": "US,pro", "u3": "FR,free", "u4": "DE,free"},
    "2026-11-04": {"u1": "DE,plus", "u3": "FR,pro", "u4": "DE,free", "u5": "germany,free"},  # u2 gone, u5 broken
    "2026-11-05": {"u1": "DE,plus", "u2": "US,plus", "u3": "FR,pro", "u4": "DE,free"},  # u2 back
}
RELANDED = {"2026-11-03": {"u1": "DE,free", "u2": "US,free", "u3": "FR,free"}}  # a corrected export
EARLIER = {"2026-11-01": {"u1": "DE,free", "u9": "IT,pro"}}

VERSIONS = "SELECT * EXCLUDE (ingested_at) FROM clean_users ORDER BY user_id, valid_from"
QUARANTINE = "SELECT * EXCLUDE (ingested_at, quarantined_at) FROM quarantine_users ORDER BY ALL"


def _land(data_dir, day: str, users: dict[str, str]) -> None:
    rows = "".join(f"{u},2026-10-01,{values}\n" for u, values in users.items())
    write_landing(data_dir, "users", day, "users.csv", HEADER + rows)


def _full_rebuild(tmp_path) -> tuple[list, list]:
    """The same warehouse, its history rebuilt from every snapshot. On a copy of the warehouse file,
    whose tables are written as its own (`scratch_tables`): the history, its state and the
    quarantine, lake tables, are rebuilt whole as tables of the copy, and the lake is left alone."""
    copy = tmp_path / "full.duckdb"
    shutil.copy(settings.warehouse_path(), copy)
    con = duckdb.connect(str(copy))
    for view in (snapshot_history.state_table(USERS), USERS.clean_table, USERS.quarantine_table):
        con.execute(f"DROP VIEW {view}")
    con.execute("BEGIN")
    with scratch_tables():
        write_clean(con, USERS, None)
    con.execute("COMMIT")
    versions, quarantine = con.execute(VERSIONS).fetchall(), con.execute(QUARANTINE).fetchall()
    con.close()
    copy.unlink()
    return versions, quarantine


# (landed snapshots, raw rows the clean run must read: from the first changed day onward)
STEPS = [
    ({"2026-11-02": SNAPSHOTS["2026-11-02"]}, 3),
    ({"2026-11-03": SNAPSHOTS["2026-11-03"]}, 4),
    ({"2026-11-04": SNAPSHOTS["2026-11-04"]}, 4),
    ({"2026-11-05": SNAPSHOTS["2026-11-05"]}, 4),
    ({}, 4),  # nothing new: only the latest snapshot is recomputed
    (RELANDED, 3 + 4 + 4),  # an older day re-landed: rebuilt from that day
    (EARLIER, 2 + 3 + 3 + 4 + 4),  # a day before all others: the whole history
]


def test_partial_rebuilds_equal_full_rebuilds(instance, data_dir, tmp_path):
    # u5's broken country is quarantined; the contract check's threshold is not what this is about.
    runner = source_runner(dataclasses.replace(USERS, max_quarantine_fraction=1.0), instance, data_dir)
    for landed, raw_rows_read in STEPS:
        for day, users in landed.items():
            _land(data_dir, day, users)
            runner.run("raw_users", partition=day)
        result = runner.run("clean_users")
        assert run_metadata(result, "clean_users")["raw_rows_scanned"] == raw_rows_read, landed
        assert (runner.query(VERSIONS), runner.query(QUARANTINE)) == _full_rebuild(tmp_path), landed

    assert runner.query("SELECT user_id, plan, valid_from, valid_to, is_current FROM clean_users ORDER BY 1, 3") == [
        ("u1", "free", *_days("2026-11-01", "2026-11-04"), False),
        ("u1", "plus", *_days("2026-11-04", None), True),
        ("u2", "pro", *_days("2026-11-02", "2026-11-03"), False),
        ("u2", "free", *_days("2026-11-03", "2026-11-04"), False),
        ("u2", "plus", *_days("2026-11-05", None), True),
        ("u3", "free", *_days("2026-11-02", "2026-11-04"), False),
        ("u3", "pro", *_days("2026-11-04", None), True),
        ("u4", "free", *_days("2026-11-04", None), True),
        ("u9", "pro", *_days("2026-11-01", "2026-11-02"), False),
    ]


def _days(start: str, end: str | None) -> tuple:
    return dt.date.fromisoformat(start), dt.date.fromisoformat(end) if end else None
