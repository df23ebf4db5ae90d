"""The user_transactions view on hand-computed fixtures from a real PostgreSQL source: 7- and 30-day
edges, nothing of day D in D's row, amounts per currency, soft-deleted payments not counted, a
refund after the fact recomputing exactly the days it changes and never leaking into earlier
training rows."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd
import pytest

from conftest import days
from helpers import pseudonym, raw_ids
from ml_platform.privacy import pseudonymize
from ml_platform.training import get_training_set
from ml_platform.warehouse import connect
from postgres_server import TRANSACTIONS_SCHEMA as SCHEMA
from postgres_server import PostgresServer, postgres_server

RAW, CLEAN = "raw_transactions", "clean_transactions"
VIEW = dg.AssetKey("user_transactions")
THIRD = 1 / 3


# Creation days (UTC): a1 10-10, a2 10-20, a3 11-12, a4 11-15, a5 11-18, a6 11-19 (23:00 at -05:00 is
# 04:00 UTC on 11-19), b1 11-14, b2 11-16, c1 11-17. b1 and c1 were deleted the day they were made.
SEED = """
INSERT INTO public.transactions VALUES
  ('a1', 'u1', 100.00, 'EUR', 'completed', '2026-10-10 10:00+00', '2026-10-10 10:00+00', NULL),
  ('a2', 'u1',  50.00, 'USD', 'completed', '2026-10-20 12:00+00', '2026-10-20 12:00+00', NULL),
  ('a3', 'u1',  20.00, 'EUR', 'completed', '2026-11-12 09:00+00', '2026-11-12 09:00+00', NULL),
  ('a4', 'u1',  30.00, 'EUR', 'completed', '2026-11-15 10:00+00', '2026-11-15 10:00+00', NULL),
  ('a5', 'u1',  15.00, 'GBP', 'failed',    '2026-11-18 22:00+00', '2026-11-18 22:00+00', NULL),
  ('a6', 'u1',   5.00, 'EUR', 'completed', '2026-11-18 23:00-05', '2026-11-18 23:00-05', NULL),
  ('b1', 'u2',  40.00, 'GBP', 'completed', '2026-11-14 09:00+00', '2026-11-14 12:00+00', '2026-11-14 12:00+00'),
  ('b2', 'u2',  25.50, 'USD', 'pending',   '2026-11-16 15:00+00', '2026-11-16 15:00+00', NULL),
  ('c1', 'u3',  12.00, 'EUR', 'completed', '2026-11-17 11:00+00', '2026-11-17 12:00+00', '2026-11-17 12:00+00');
"""

# a4 (created 11-15) is refunded on 11-21.
REFUND = "UPDATE public.transactions SET status = 'refunded', updated_at = '2026-11-21 08:00+00' WHERE transaction_id = 'a4';"

COLUMNS = (
    "user_id, strftime(as_of_date, '%m-%d'), strftime(created_at, '%m-%d'), completed_count_7d, completed_count_30d, "
    "completed_eur_7d, completed_usd_7d, completed_gbp_7d, completed_eur_30d, completed_usd_30d, completed_gbp_30d, "
    "refunded_count_30d, failed_count_30d, transactions_30d, refund_rate_30d, failure_rate_30d, "
    "days_since_last_completed"
)


@pytest.fixture(scope="module")
def server():
    with postgres_server() as pg:
        yield pg


@pytest.fixture
def pg(server: PostgresServer) -> PostgresServer:
    server.sql(SCHEMA + SEED)
    return server


@pytest.fixture
def defs(data_dir, pg, monkeypatch):
    """The code location, built after the connection variables are set (as a deployment would)."""
    for name, value in pg.env().items():
        monkeypatch.setenv(name, value)
    from ml_platform.definitions import build_definitions

    return build_definitions()


def _build(runner, first: str, last: str) -> None:
    runner.run(RAW, CLEAN, range_=("2026-10-10", "2026-11-21"))
    runner.run("user_transactions", range_=(first, last))


def test_values_as_of_each_day(runner, pg):
    pg.sql(REFUND)
    _build(runner, "2026-11-18", "2026-11-21")
    # The table holds pseudonymized user ids, shown as the ids they stand for, by as-of day then user.
    rows = raw_ids(runner.query(f"SELECT {COLUMNS} FROM user_transactions"), "u1", "u2")
    assert sorted(rows, key=lambda r: (r[1], r[0])) == [
        # user, as of, created, completed 7d/30d, EUR/USD/GBP 7d, EUR/USD/GBP 30d, refunded, failed,
        # transactions (30d), refund rate, failure rate, days since the last completed
        # All of u1's rows use a4, refunded on 11-21: they are known from the end of that day.
        # 11-18: 30 days = 10-19 … 11-17 (a2, a3, a4), 7 days = 11-11 … 11-17 (a3; a4 is refunded).
        ("u1", "11-18", "11-22", 1, 2, 20.0, 0.0, 0.0, 20.0, 50.0, 0.0, 1, 0, 3, THIRD, 0.0, 6),
        # u2's only live payment is the pending b2 (b1 was deleted); u3's only payment was deleted: no row.
        ("u2", "11-18", "11-17", 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0, 1, None, 0.0, None),
        # 11-19: a2 exactly 30 days before and a3 exactly 7 days before still count; a5 (11-18,
        # failed) now counts; a6, created on 11-19 (UTC), does not.
        ("u1", "11-19", "11-22", 1, 2, 20.0, 0.0, 0.0, 20.0, 50.0, 0.0, 1, 1, 4, THIRD, 0.25, 7),
        ("u2", "11-19", "11-17", 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0, 1, None, 0.0, None),
        # 11-20: a2 (31 days before) and a3 (8 days before, out of the 7-day window) drop out; a6 counts.
        ("u1", "11-20", "11-22", 1, 2, 5.0, 0.0, 0.0, 25.0, 0.0, 0.0, 1, 1, 4, THIRD, 0.25, 1),
        ("u2", "11-20", "11-17", 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0, 1, None, 0.0, None),
        ("u1", "11-21", "11-22", 1, 2, 5.0, 0.0, 0.0, 25.0, 0.0, 0.0, 1, 1, 4, THIRD, 0.25, 2),
        ("u2", "11-21", "11-17", 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0, 1, None, 0.0, None),
    ]


def test_refund_recomputes_the_days_it_changes_and_never_leaks(runner, data_dir, instance, defs, pg):
    from helpers import Ticker

    _build(runner, "2026-11-14", "2026-11-21")
    u1 = (
        "SELECT strftime(as_of_date, '%m-%d'), strftime(created_at, '%m-%d'), completed_count_30d, "
        f"completed_eur_30d, refunded_count_30d FROM user_transactions WHERE user_id = '{pseudonym('u1')}'"
        " ORDER BY as_of_date"
    )
    before = [
        ("11-14", "11-13", 2, 20.0, 0),
        ("11-15", "11-13", 2, 20.0, 0),
        ("11-16", "11-16", 3, 50.0, 0),
        ("11-17", "11-16", 3, 50.0, 0),
        ("11-18", "11-16", 3, 50.0, 0),
        ("11-19", "11-19", 3, 50.0, 0),
        ("11-20", "11-20", 3, 55.0, 0),
        ("11-21", "11-20", 3, 55.0, 0),
    ]
    assert runner.query(u1) == before
    # Automation as it runs on 11-21, after the refund.
    ticker = Ticker(defs, instance, now=dt.datetime(2026, 11, 21, 12, tzinfo=dt.UTC))
    ticker.tick()
    assert VIEW not in ticker.tick()

    pg.sql(REFUND)
    runner.run(RAW, partition="2026-11-15")
    requested = ticker.tick()
    # (The clean layer also redoes the next day, which a raw day may hold rows of.)
    assert requested[dg.AssetKey(CLEAN)] == {"2026-11-15", "2026-11-16"}
    # The view waits for the tick after its clean days are written (requested beside them, it
    # would run before them and again after).
    assert VIEW not in requested
    runner.run(CLEAN, range_=("2026-11-15", "2026-11-16"))
    # The view's days D read 11-15 when D - 30 <= 11-15 < D: 11-16 … 12-15, of which 11-16 … 11-21
    # exist.
    assert ticker.tick()[VIEW] == set(days("2026-11-16", "2026-11-21"))
    assert VIEW not in ticker.tick()
    runner.run("user_transactions", range_=("2026-11-16", "2026-11-21"))
    assert runner.query(u1) == [
        *before[:2],
        # From 11-16 a4 counts as refunded, and the rows are known only after the refund's day.
        ("11-16", "11-22", 2, 20.0, 1),
        ("11-17", "11-22", 2, 20.0, 1),
        ("11-18", "11-22", 2, 20.0, 1),
        ("11-19", "11-22", 2, 20.0, 1),
        ("11-20", "11-22", 2, 25.0, 1),
        ("11-21", "11-22", 2, 25.0, 1),
    ]

    # A payment created today changes tomorrow's row, which does not exist yet: nothing to request.
    pg.sql(
        "INSERT INTO public.transactions VALUES ('a7', 'u1', 9.00, 'EUR', 'completed',"
        " '2026-11-21 10:00+00', '2026-11-21 10:00+00', NULL);"
    )
    runner.run(RAW, partition="2026-11-21")
    requested = ticker.tick()
    assert "2026-11-21" in requested[dg.AssetKey(CLEAN)]
    runner.run(CLEAN, partition="2026-11-21")
    assert VIEW not in requested
    assert VIEW not in ticker.tick()

    # Training rows before the refund's day ended see nothing of it: the recomputed rows are not
    # known yet, and the newest row known then (11-15) is older than the 2-day TTL by 11-18.
    entities = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u1"],
            "event_timestamp": pd.to_datetime(["2026-11-16 12:00", "2026-11-18 12:00", "2026-11-22 00:00"]),
        }
    )
    con = connect(data_dir / "warehouse.duckdb", read_only=True)
    try:
        entities = pseudonymize(con, entities, ["user_id"])  # curated tables hold pseudonyms
        training = get_training_set(
            con, entities, ["user_transactions:completed_count_30d", "user_transactions:refunded_count_30d"]
        ).fetchall()
    finally:
        con.close()
    assert raw_ids(training, "u1") == [
        ("u1", dt.datetime(2026, 11, 16, 12), 2, 0),
        ("u1", dt.datetime(2026, 11, 18, 12), None, None),
        ("u1", dt.datetime(2026, 11, 22), 2, 1),
    ]
