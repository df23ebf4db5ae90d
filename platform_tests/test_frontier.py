"""Feature-view frontiers kept at write time: after any sequence of window rewrites the kept
frontier equals one computed from scratch, and lookups through it equal lookups without it."""

from __future__ import annotations

import datetime as dt
import random

import duckdb
import pandas as pd
import pytest

from helpers import pseudonym
from ml_platform.contracts.writer import scratch_tables
from ml_platform.point_in_time.frontier import available_since, frontier_table, refresh_frontier
from ml_platform.training import FeatureTable, point_in_time_join
from ml_platform.warehouse import sql

T0 = dt.datetime(2026, 11, 1)
KEYS = ("k1", "k2", "k3")


def _rows(rng: random.Random, first_day: int, last_day: int, count: int) -> list[tuple]:
    """Rows timestamped within the days, created from 2 days before to 3 days after (a few NULL)."""
    rows, seen = [], set()
    for _ in range(count):
        key = rng.choice(KEYS)
        ts = T0 + dt.timedelta(days=rng.randint(first_day, last_day), hours=rng.choice((0, 6, 12, 18)))
        created = None if rng.random() < 0.05 else ts + dt.timedelta(hours=6 * rng.randint(-8, 12))
        if (key, ts, created) in seen:
            continue
        seen.add((key, ts, created))
        rows.append((key, ts, created, ts.date(), rng.random()))
    return rows


def _write(con: duckdb.DuckDBPyConnection, first_day: int, last_day: int, rows: list[tuple]) -> None:
    """Replace the window's days with `rows`, as the writer does, and keep the frontier."""
    window = f"day BETWEEN {sql.literal((T0 + dt.timedelta(days=first_day)).date())} AND {sql.literal((T0 + dt.timedelta(days=last_day)).date())}"
    before = available_since(con, "view", "ts", "created", window)
    con.execute(f"DELETE FROM view WHERE {window}")
    if rows:
        con.executemany("INSERT INTO view VALUES (?, ?, ?, ?, ?)", rows)
    after = available_since(con, "view", "ts", "created", window)
    since = min((s for s in (before, after) if s is not None), default=None)
    refresh_frontier(con, "view", ("key",), "ts", "created", since)


@pytest.mark.parametrize("seed", range(40))
def test_kept_frontier_equals_a_fresh_one_after_every_write(seed):
    with scratch_tables():  # plain tables of this connection (on the lake: the test below)
        _kept_equals_fresh(seed)


def _kept_equals_fresh(seed: int) -> None:
    rng = random.Random(seed)
    con = duckdb.connect()
    con.execute("CREATE TABLE view (key VARCHAR, ts TIMESTAMP, created TIMESTAMP, day DATE, value DOUBLE)")
    refresh_frontier(con, "view", ("key",), "ts", "created", None)  # created, empty
    for _ in range(8):
        first = rng.randint(0, 9)
        last = first + rng.randint(0, 3)
        _write(con, first, last, _rows(rng, first, last, rng.randint(0, 25)))
        kept = con.execute(f"SELECT * FROM {frontier_table('view')} ORDER BY ALL").fetchall()
        con.execute("DROP TABLE IF EXISTS fresh")
        con.execute(f"CREATE TABLE fresh AS SELECT * FROM {frontier_table('view')} LIMIT 0")
        con.execute(f"ALTER TABLE {frontier_table('view')} RENAME TO kept_copy")
        refresh_frontier(con, "view", ("key",), "ts", "created", None)  # built from scratch
        fresh = con.execute(f"SELECT * FROM {frontier_table('view')} ORDER BY ALL").fetchall()
        con.execute(f"DROP TABLE {frontier_table('view')}")
        con.execute(f"ALTER TABLE kept_copy RENAME TO {frontier_table('view')}")
        assert kept == fresh

    # Lookups through the kept frontier equal lookups computed from the table alone.
    entities = pd.DataFrame(
        {
            "key": [rng.choice((*KEYS, None)) for _ in range(60)],
            "event_timestamp": [T0 + dt.timedelta(hours=3 * rng.randint(0, 120)) for _ in range(60)],
        }
    )
    view = FeatureTable("view", "view", ("key",), "ts", "created", ttl=dt.timedelta(days=2))
    plain = FeatureTable("view", "view", ("key",), "ts", "created", ttl=dt.timedelta(days=2), use_frontier=False)
    assert (
        point_in_time_join(con, entities, [(view, ["value"])])
        .df()
        .equals(point_in_time_join(con, entities, [(plain, ["value"])]).df())
    )


def test_a_feature_view_keeps_its_frontier_through_late_data(runner, data_dir):
    """user_activity as the platform writes it: first a range, then a late event recomputes some
    days (their rows become available later): the kept frontier stays equal to a fresh one."""
    from conftest import write_landing
    from ml_platform.point_in_time.frontier import frontier_rows
    from test_user_activity import EVENTS, _build, _land

    _land(data_dir)
    _build(runner)
    write_landing(
        data_dir, "events", "2026-11-08", "late.csv", EVENTS + "c1,u2,purchase,2026-11-06T12:00:00Z,P3,5.0,mobile,s5\n"
    )
    runner.run("raw_events", partition="2026-11-08")
    runner.run("clean_events", range_=("2026-11-05", "2026-11-09"))
    runner.run("user_activity", range_=("2026-11-07", "2026-11-11"))
    fresh = frontier_rows("user_activity", ("user_id",), "as_of", "created_at")
    kept = runner.query("SELECT * FROM user_activity__frontier ORDER BY ALL")
    assert kept == runner.query(f"SELECT * FROM ({fresh}) ORDER BY ALL")
    # The late purchase made u2's rows as of 11-07 and 11-08 known only on 11-09, the day its
    # 11-09 row became known too: they never answer a lookup, so they are off the frontier.
    assert runner.query(
        "SELECT strftime(as_of_date, '%m-%d'), strftime(__available, '%m-%d') FROM user_activity__frontier"
        " WHERE user_id = ? ORDER BY 1",
        [pseudonym("u2")],  # curated tables hold user ids pseudonymized
    ) == [
        ("11-04", "11-04"),
        ("11-05", "11-05"),
        ("11-06", "11-06"),
        ("11-09", "11-09"),
        ("11-10", "11-10"),
        ("11-11", "11-11"),
    ]
