"""The product_features view on hand-computed fixtures: the catalogue as of each day from the
snapshots landed before it (a price change shows from the day after its snapshot landed), the
7-day change, a deactivated and a dropped product; a catalogue refresh updates only the latest day."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd

from conftest import write_landing
from ml_platform.training import get_training_set
from ml_platform.warehouse import connect

HEADER = "product_id,category,price,active\n"
FEATURES = dg.AssetKey("product_features")
COLUMNS = (
    "product_id, strftime(as_of_date, '%m-%d'), strftime(created_at, '%m-%d'), category, price, active, "
    "price_7d_ago, price_change_7d, price_change_7d_pct"
)

# Snapshots by landing day; days without one (11-03, 11-05, 11-07, 11-09) keep the last one.
SNAPSHOTS = {
    "2026-11-01": ["P0001,electronics,100.0,true", "P0002,books,20.0,true"],
    "2026-11-02": ["P0001,electronics,100.0,true", "P0002,books,20.0,true"],
    # P0001's price drops to 80; P0003 is listed.
    "2026-11-04": ["P0001,electronics,80.0,true", "P0002,books,20.0,true", "P0003,toys,10.0,true"],
    # P0002 is deactivated.
    "2026-11-06": ["P0001,electronics,80.0,true", "P0002,books,20.0,false", "P0003,toys,10.0,true"],
    # P0003 is dropped from the catalogue.
    "2026-11-08": ["P0001,electronics,80.0,true", "P0002,books,20.0,false"],
    # P0001 goes up to 90.
    "2026-11-10": ["P0001,electronics,90.0,true", "P0002,books,20.0,false"],
}


def _land(data_dir, snapshots: dict[str, list[str]]) -> None:
    for day, rows in snapshots.items():
        write_landing(data_dir, "products", day, "products.csv", HEADER + "\n".join(rows) + "\n")


def _build(runner, last_snapshot: str = "2026-11-10", last: str = "2026-11-12") -> None:
    runner.run("raw_products", range_=("2026-11-01", last_snapshot))
    runner.run("clean_products")
    runner.run("product_features", range_=("2026-11-02", last))


def test_catalogue_as_of_each_day(runner, data_dir):
    _land(data_dir, SNAPSHOTS)
    _build(runner)
    rows = runner.query(f"SELECT {COLUMNS} FROM product_features ORDER BY as_of_date, product_id")
    electronics, books, toys = "electronics", "books", "toys"
    assert rows == [
        # product, as of, created, category, price, active, price 7d ago, change, relative change
        # Nothing was listed 7 days before (as of D - 7 means the snapshot before D - 7): no change yet.
        ("P0001", "11-02", "11-02", electronics, 100.0, True, None, None, None),
        ("P0002", "11-02", "11-02", books, 20.0, True, None, None, None),
        ("P0001", "11-03", "11-02", electronics, 100.0, True, None, None, None),
        ("P0002", "11-03", "11-02", books, 20.0, True, None, None, None),
        # The 11-04 snapshot lands during 11-04: as of that day's midnight the old price holds.
        ("P0001", "11-04", "11-02", electronics, 100.0, True, None, None, None),
        ("P0002", "11-04", "11-02", books, 20.0, True, None, None, None),
        # From 11-05 on the new price (and P0003), known from the end of 11-04.
        ("P0001", "11-05", "11-05", electronics, 80.0, True, None, None, None),
        ("P0002", "11-05", "11-02", books, 20.0, True, None, None, None),
        ("P0003", "11-05", "11-05", toys, 10.0, True, None, None, None),
        ("P0001", "11-06", "11-05", electronics, 80.0, True, None, None, None),
        ("P0002", "11-06", "11-02", books, 20.0, True, None, None, None),
        ("P0003", "11-06", "11-05", toys, 10.0, True, None, None, None),
        # Deactivated in the 11-06 snapshot: still a row, inactive from 11-07.
        ("P0001", "11-07", "11-05", electronics, 80.0, True, None, None, None),
        ("P0002", "11-07", "11-07", books, 20.0, False, None, None, None),
        ("P0003", "11-07", "11-05", toys, 10.0, True, None, None, None),
        ("P0001", "11-08", "11-05", electronics, 80.0, True, None, None, None),
        ("P0002", "11-08", "11-07", books, 20.0, False, None, None, None),
        ("P0003", "11-08", "11-05", toys, 10.0, True, None, None, None),
        # 11-09: 7 days earlier is 11-02, whose newest snapshot is 11-01's (100.0). P0003 is gone.
        ("P0001", "11-09", "11-05", electronics, 80.0, True, 100.0, -20.0, -0.2),
        ("P0002", "11-09", "11-07", books, 20.0, False, 20.0, 0.0, 0.0),
        ("P0001", "11-10", "11-05", electronics, 80.0, True, 100.0, -20.0, -0.2),
        ("P0002", "11-10", "11-07", books, 20.0, False, 20.0, 0.0, 0.0),
        # 90 from 11-11; 7 days earlier (11-04) the 11-04 snapshot had not landed yet: still 100.
        ("P0001", "11-11", "11-11", electronics, 90.0, True, 100.0, -10.0, -0.1),
        ("P0002", "11-11", "11-07", books, 20.0, False, 20.0, 0.0, 0.0),
        # ...and as of 11-12, 7 days earlier is 11-05: the price was 80.
        ("P0001", "11-12", "11-11", electronics, 90.0, True, 80.0, 10.0, 0.125),
        ("P0002", "11-12", "11-07", books, 20.0, False, 20.0, 0.0, 0.0),
    ]

    # Training rows see the price known at their time: 100 until the end of 11-04, then 80.
    entities = pd.DataFrame(
        {
            "product_id": ["P0001", "P0001", "P0003"],
            "event_timestamp": pd.to_datetime(["2026-11-04 23:59", "2026-11-05 00:00", "2026-11-10 12:00"]),
        }
    )
    con = connect(data_dir / "warehouse.duckdb", read_only=True)
    try:
        training = get_training_set(con, entities, ["product_features:price", "product_features:active"]).fetchall()
    finally:
        con.close()
    assert training == [
        ("P0001", dt.datetime(2026, 11, 4, 23, 59), 100.0, True),
        ("P0001", dt.datetime(2026, 11, 5), 80.0, True),
        # Dropped on 11-08: its last row (11-08) is older than the 2-day TTL by 11-10 12:00.
        ("P0003", dt.datetime(2026, 11, 10, 12), None, None),
    ]


def test_a_catalogue_refresh_updates_only_the_latest_day(runner, data_dir, instance, defs):
    """A snapshot of day S changes the rows of the days after S only; the latest partition that
    exists is today's, so a late snapshot of yesterday requests today's partition and nothing of
    the history, and today's own snapshot requests nothing."""
    from helpers import Ticker

    _land(data_dir, SNAPSHOTS)
    _build(runner)
    # Automation as it runs on 11-12, before that day's snapshot has landed.
    ticker = Ticker(defs, instance, now=dt.datetime(2026, 11, 12, 6, tzinfo=dt.UTC))
    ticker.tick()
    assert FEATURES not in ticker.tick()

    # 11-11's snapshot lands late, after midnight: P0001 at 95. It is the newest before 11-12 only.
    late = ["P0001,electronics,95.0,true", "P0002,books,20.0,false"]
    _land(data_dir, {"2026-11-11": late})
    runner.run("raw_products", partition="2026-11-11")
    requested = ticker.tick()
    assert requested[dg.AssetKey("clean_products")] == {None}
    # Not in the same tick: an unpartitioned table and a partitioned view cannot share a run.
    assert FEATURES not in requested
    runner.run("clean_products")
    assert ticker.tick()[FEATURES] == {"2026-11-12"}
    assert FEATURES not in ticker.tick()
    runner.run("product_features", partition="2026-11-12")
    assert runner.query(
        "SELECT strftime(as_of_date, '%m-%d'), strftime(created_at, '%m-%d'), price, price_change_7d "
        "FROM product_features WHERE product_id = 'P0001' AND as_of_date >= '2026-11-11' ORDER BY 1"
    ) == [("11-11", "11-11", 90.0, -10.0), ("11-12", "11-12", 95.0, 15.0)]

    # Today's snapshot changes tomorrow's row only, which does not exist yet: nothing is requested,
    # neither today's (it reads the versions of the day before, which the refresh says it left
    # alone: `ml_platform/changed_from`) nor one day of the history.
    _land(data_dir, {"2026-11-12": ["P0001,electronics,60.0,true", "P0002,books,20.0,false"]})
    runner.run("raw_products", partition="2026-11-12")
    assert FEATURES not in ticker.tick()
    runner.run("clean_products")
    assert FEATURES not in ticker.tick()
