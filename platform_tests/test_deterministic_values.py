"""Two builds of the same inputs agree to the last bit, whatever order the rows were stored in.

A floating-point sum depends on the order its terms are added in, and DuckDB adds them in the
order it meets the rows (storage order, how threads split them): two identical catch-ups of the
demo week gave `user_activity.lifetime_value` 297.2 in one and 297.20000000000005 in the other.
Every curated table therefore adds in a fixed order or exactly (decimals).

Here the clean tables are written twice with the same rows, once in key order and once in a
scrambled order, and every curated table and label is built from each, one with one thread and
one with two. The builds must hold equal rows, every value compared exactly (DOUBLE equality is
bit equality but for 0.0 = -0.0, which no sum of these amounts gives). The data has many amounts
per group (twelve purchases per user-day, six readings per device-hour) so that the storage order
shows: the test first checks that a plain floating-point `sum` over it does differ between the two.
"""

from __future__ import annotations

import datetime as dt

import pytest

from ml_platform.warehouse import connect, sql

FIRST, DAYS = dt.date(2026, 10, 1), 12

# Per day: 4 users x 12 purchases (amounts with cents) and a page view; readings of 2 devices,
# six per hour with temperatures, vibrations and power to two or three decimals. `n`: day number.
ROWS = {
    "clean_events": """
        SELECT 'e-' || n || '-' || u || '-' || k AS event_id, 'u' || u AS user_id,
               CASE WHEN k = 12 THEN 'page_view' ELSE 'purchase' END AS event_type,
               CAST(d AS TIMESTAMP) + INTERVAL (u * 5 + k) MINUTE AS event_time, d AS event_date,
               'P0001' AS product_id,
               CASE WHEN k < 12 THEN CAST((n * 7919 + u * 104729 + k * 1299709) % 99991 AS DOUBLE) / 100 + 0.07 END
                 AS amount,
               'mobile' AS device_type, 's' || n || u AS session_id, d AS landing_date
        FROM days, range(4) users(u), range(13) kinds(k)""",
    "clean_telemetry": """
        SELECT 'D' || dev AS device_id, CAST(d AS TIMESTAMP) + INTERVAL (h * 60 + r * 9) MINUTE AS "timestamp",
               d AS reading_date,
               40 + CAST((n * 31 + dev * 17 + h * 13 + r * 7) % 997 AS DOUBLE) / 37 AS temperature,
               CAST((n + dev * 3 + h * 5 + r) % 89 AS DOUBLE) / 11 AS vibration, 3.0 AS pressure, 1500 AS rpm,
               10 + CAST((n + h + r * 3) % 53 AS DOUBLE) / 7 AS power_consumption, 1000.0 AS operating_hours,
               FALSE AS maintenance_flag, 'berlin' AS location, d AS landing_date
        FROM days, range(2) devices(dev), range(24) hours(h), range(6) readings(r)""",
    "clean_users": """
        SELECT 'u' || u AS user_id, DATE '2026-01-01' AS signup_date, 'DE' AS country, 'free' AS plan,
               DATE '2026-01-01' AS valid_from, NULL::DATE AS valid_to, TRUE AS is_current,
               DATE '2026-01-01' AS landing_date
        FROM range(4) users(u)""",
}
RAW_CLOCKS = ("raw_events", "raw_telemetry")
# Storage orders: by key, and scrambled by a hash of the key.
ORDERS = {"sorted": "ORDER BY ALL", "scrambled": "ORDER BY hash(CAST(COLUMNS(*) AS VARCHAR)) DESC"}


def _build(path, order: str, threads: int) -> list:
    """Write the clean rows in `order`, then every curated table and label; returns the tables."""
    from ml_platform.clean.write import create_clean_tables
    from ml_platform.declarations import discover_curated_tables, discover_labels, discover_specs

    tables = [*discover_curated_tables(), *discover_labels()]
    con = connect(path)
    try:
        con.execute(f"SET threads = {threads}")
        con.execute(
            "CREATE TEMP TABLE days AS SELECT CAST(d AS DATE) AS d, CAST(n AS INTEGER) AS n FROM"
            f" (SELECT {sql.literal(FIRST)} + CAST(i AS INTEGER) AS d, i AS n FROM range({DAYS}) t(i))"
        )
        for spec in discover_specs():
            create_clean_tables(con, spec)
            if spec.clean_table in ROWS:
                rows = ROWS[spec.clean_table]
                con.execute(f"INSERT INTO {sql.ident(spec.clean_table)} BY NAME SELECT * FROM ({rows}) {ORDERS[order]}")
        for raw in RAW_CLOCKS:
            con.execute(f"INSERT INTO {sql.ident(raw)} SELECT d, 'f.csv', 1, now()::TIMESTAMP, 'v1', '{{}}' FROM days")
        last = FIRST + dt.timedelta(days=DAYS - 1)
        con.execute("BEGIN")
        for table in tables:
            table.write(con, (FIRST, last))
        con.execute("COMMIT")
    finally:
        con.close()
    return tables


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    root = tmp_path_factory.mktemp("deterministic")
    with pytest.MonkeyPatch.context() as mp:
        from helpers import TEST_PSEUDONYM_KEY

        mp.setenv("ML_PLATFORM_PSEUDONYM_KEY", TEST_PSEUDONYM_KEY)
        # The clean tables are filled by INSERT in a given order, and what this checks is the
        # curated SQL's arithmetic, not where its tables live: warehouse tables.
        mp.setenv("ML_PLATFORM_LAKE_TABLES", "false")
        sorted_path, scrambled_path = root / "sorted.duckdb", root / "scrambled.duckdb"
        tables = _build(sorted_path, "sorted", threads=1)
        _build(scrambled_path, "scrambled", threads=2)
    return sorted_path, scrambled_path, tables


def test_the_storage_orders_change_a_floating_point_sum(builds):
    """The guard: over these rows, adding doubles in storage order gives other bits in the two builds."""
    sorted_path, scrambled_path, _ = builds
    query = (
        "SELECT user_id, event_date, sum(amount) FROM clean_events WHERE event_type = 'purchase'"
        " GROUP BY ALL ORDER BY ALL"
    )
    with connect(sorted_path, read_only=True) as con:
        con.execute("SET threads = 1")
        in_sorted = con.execute(query).fetchall()
    with connect(scrambled_path, read_only=True) as con:
        con.execute("SET threads = 1")
        in_scrambled = con.execute(query).fetchall()
    assert len(in_sorted) == len(in_scrambled) == 4 * DAYS
    assert sum(a != b for a, b in zip(in_sorted, in_scrambled, strict=True)) > 0


def test_every_curated_table_is_equal_to_the_last_bit_in_both_builds(builds):
    sorted_path, scrambled_path, tables = builds
    with connect(sorted_path) as con:
        con.execute(f"ATTACH {sql.literal(str(scrambled_path))} AS other (READ_ONLY)")
        differing = {}
        for table in tables:
            name = sql.ident(table.name)
            only_here, only_there = (
                con.execute(f"SELECT count(*) FROM (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b})").fetchone()[0]
                for a, b in ((name, f"other.main.{name}"), (f"other.main.{name}", name))
            )
            if only_here or only_there:
                differing[table.name] = (only_here, only_there)
        assert differing == {}
        # Not vacuous: the tables whose sums this is about hold rows.
        counts = {
            t: con.execute(f"SELECT count(*) FROM {sql.ident(t)}").fetchone()[0]
            for t in ("user_activity", "user_daily_features", "device_health")
        }
    # (The last hour of the last day is as of the next day, outside the window.)
    assert counts == {
        "user_activity": 4 * (DAYS - 1),
        "user_daily_features": 4 * DAYS,
        "device_health": 2 * (24 * DAYS - 1),
    }
