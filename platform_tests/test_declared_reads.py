"""Every curated table reads nothing but what it declares: its SQL run on only the declared days
gives exactly the rows the warehouse holds.

A warehouse of six weeks of clean tables is written straight from SQL (every source, in each
clean table's own DDL): events with purchases and late landings, users and products histories
with versions changing on chosen days, telemetry on the hours' edges (xx:00:00, 23:30, landing
the next day), failures, payments refunded later, hourly weather, and the raw tables' landing
days the labels' clocks read. Long enough for churn labels to mature (33 days) and for lifetime
values to reach more than 30 days back. Every curated table is written from it, whole, as a
backfill would.

Then the consistency audit (`ml_platform.curated.audit`) recomputes every partition of every
table in a scratch database holding *only* the rows the partition declares it reads
(`CuratedTable.inputs`): the upstream days of its windows, the snapshot versions valid on its
as-of days, a label's clock. Equal rows mean reading anything else cannot change the result, so
an update of anything a partition depends on is an update of something it declares: automation
requests it again, and late data, retries and recovery converge.

The audit has teeth: narrowing a declaration below what the SQL really reads (user_activity's
lifetime values to the 30 days before, churn's customers to its horizon, device_health's 24 hours
to the same day, user_daily_features' users as of the day before) makes it find the partitions
that read the undeclared days.

Stream feature views (`declarations/stream_features`) are left out on purpose: they are not curated
tables and declare no reads. Their rows are made per micro-batch, stamped with the online store's
write time, so no recomputation from a day's rows reproduces them (`ml_platform.curated.audit`
says why); `test_stream_features.py` checks their values batch by batch instead.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from conftest import build_state
from ml_platform.curated import Read
from ml_platform.curated.audit import audit_tables
from ml_platform.warehouse import connect

DAYS = 42
LAST = dt.date(2026, 11, 20)
FIRST = LAST - dt.timedelta(days=DAYS - 1)

# Each clean table from SQL over the days (`d`, day number `n`), in that table's DDL; lineage
# columns are filled where a curated table reads them (landing_date).
ROWS = {
    # Per day and user (8 users, from day 0 or later): a page view and, most days, a purchase of a
    # two-decimal amount; every 5th day's events land 2 days late.
    "clean_events": """
        SELECT 'e-' || n || '-' || u || '-' || k AS event_id, 'u' || u AS user_id,
               CASE WHEN k = 0 THEN 'page_view' ELSE 'purchase' END AS event_type,
               CAST(d AS TIMESTAMP) + INTERVAL (3 * u + k) HOUR AS event_time, d AS event_date,
               'P' || lpad(CAST(1 + (n + u) % 9 AS VARCHAR), 4, '0') AS product_id,
               CASE WHEN k = 1 THEN CAST(((n * 37 + u * 101) % 9000) AS DOUBLE) / 100 + 0.01 END AS amount,
               ['mobile', 'desktop', 'tablet'][1 + (n + u) % 3] AS device_type, 's' || ((n + u) // 2) AS session_id,
               d + CAST(CASE WHEN n % 5 = 0 THEN 2 ELSE 0 END AS INTEGER) AS landing_date
        FROM days, range(8) users(u), range(2) kinds(k)
        WHERE n >= u AND NOT (k = 1 AND (n + u) % 4 = 0)""",
    # Three devices: readings at 10:00:00, 10:59:59, 11:00:00 and 23:30 (landed the next day).
    "clean_telemetry": """
        SELECT 'D' || dev AS device_id, CAST(d AS TIMESTAMP) + to_seconds(secs) AS "timestamp", d AS reading_date,
               50 + ((n * 7 + dev * 13 + secs) % 40) + 0.25 AS temperature, 1 + ((n + dev + secs) % 9) * 0.5 AS vibration,
               3.0 AS pressure, 1500 AS rpm, 10.0 + (n + secs) % 5 AS power_consumption, 1000.0 AS operating_hours,
               FALSE AS maintenance_flag, ['berlin', 'london'][1 + dev % 2] AS location,
               CASE WHEN secs >= 23 * 3600 THEN d + 1 ELSE d END AS landing_date
        FROM days, range(3) devices(dev), (VALUES (36000), (39599), (39600), (84600)) AS hours(secs)""",
    # A failure of one device every 3 days in the early morning, planned maintenance otherwise.
    "clean_maintenance": """
        SELECT 'm' || n AS record_id, 'D' || (n % 3) AS device_id, CAST(d AS TIMESTAMP) + INTERVAL 5 HOUR AS event_time,
               d AS event_date, CASE WHEN n % 3 = 0 THEN 'failure' ELSE 'maintenance' END AS event_type,
               'bearing' AS component, 30 AS downtime_minutes, d AS landing_date
        FROM days""",
    # Payments of 6 users, in three currencies, refunded (updated) 3 days after every 4th; and a 7th
    # user's single payment on day 1.
    "clean_transactions": """
        SELECT 't-' || n || '-' || u AS transaction_id, 'u' || u AS user_id,
               CAST(((n * 53 + u * 17) % 5000) AS DOUBLE) / 100 + 1 AS amount, ['EUR', 'USD', 'GBP'][1 + (n + u) % 3] AS currency,
               CASE WHEN (n + u) % 4 = 0 THEN 'refunded' WHEN (n + u) % 7 = 0 THEN 'failed' ELSE 'completed' END AS status,
               CAST(d AS TIMESTAMP) + INTERVAL 9 HOUR AS created_at, d AS transaction_date,
               CAST(d AS TIMESTAMP) + INTERVAL (CASE WHEN (n + u) % 4 = 0 THEN 3 * 24 + 9 ELSE 9 END) HOUR AS updated_at,
               d AS landing_date
        FROM days, range(6) users(u) WHERE (n + u) % 2 = 0
        UNION ALL  -- one payment of a user never seen again: later days look back more than 30 days
        SELECT 't-once', 'u9', 12.5, 'EUR', 'completed', CAST(d AS TIMESTAMP) + INTERVAL 9 HOUR, d,
               CAST(d AS TIMESTAMP) + INTERVAL 9 HOUR, d
        FROM days WHERE n = 1""",
    # Two locations, a reading at 00:00 and 12:00.
    "clean_weather": """
        SELECT loc AS location, CAST(d AS TIMESTAMP) + INTERVAL (12 * h) HOUR AS observed_at, d AS observation_date,
               (n % 20) - 5.0 AS temperature_c, 60.0 AS humidity_pct, 0.5 * h AS precipitation_mm, 10.0 AS wind_speed_kmh,
               d AS landing_date
        FROM days, (VALUES ('berlin'), ('london')) AS l(loc), range(2) hours(h)""",
    # Users' versions: plan changes on day 10 (odd users) and day 25 (users 0-3), signup before day 0.
    "clean_users": """
        SELECT 'u' || u AS user_id, DATE '2026-01-01' + u AS signup_date, ['DE', 'US'][1 + u % 2] AS country, plan,
               valid_from, valid_to, valid_to IS NULL AS is_current, valid_from AS landing_date
        FROM (VALUES (0, 'free', 0, 25), (0, 'pro', 25, NULL), (1, 'free', 0, 10), (1, 'pro', 10, 25),
                     (1, 'team', 25, NULL), (2, 'pro', 0, 25), (2, 'free', 25, NULL), (3, 'free', 0, 10),
                     (3, 'pro', 10, 25), (3, 'team', 25, NULL), (4, 'free', 0, NULL), (5, 'pro', 0, 10),
                     (5, 'free', 10, NULL), (6, 'team', 0, NULL), (7, 'free', 3, NULL)) AS v(u, plan, f, t),
             LATERAL (SELECT FIRST_DAY + f AS valid_from, CASE WHEN t IS NOT NULL THEN FIRST_DAY + t END AS valid_to)""",
    # Nine products; prices change on days 7, 16 and 30 (some), one product appears on day 20.
    "clean_products": """
        SELECT 'P' || lpad(CAST(p AS VARCHAR), 4, '0') AS product_id, 'c' || (p % 3) AS category,
               price, p != 4 OR f < 30 AS active, valid_from, valid_to, valid_to IS NULL AS is_current,
               valid_from AS landing_date
        FROM (SELECT p, f, t, 10.0 * p + f / 4.0 AS price
              FROM range(1, 10) products(p),
                   (VALUES (0, 7), (7, 16), (16, 30), (30, NULL)) AS v(f, t)
              WHERE p != 9 OR f >= 16),
             LATERAL (SELECT FIRST_DAY + f AS valid_from, CASE WHEN t IS NOT NULL THEN FIRST_DAY + t END AS valid_to)""",
}
# The raw tables a label's clock reads: each day landed.
RAW_CLOCKS = ("raw_events", "raw_telemetry")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(warehouse path, days, curated tables, partition columns) once every table is written."""
    # The suite's environment (data folder, pseudonym key: the recomputation pseudonymizes too).
    with build_state(tmp_path_factory.mktemp("declared")) as (state, _), pytest.MonkeyPatch.context() as mp:
        # The clean tables are filled by INSERT, and what this checks is the curated SQL, not where
        # its tables live: warehouse tables (the audit recomputes lake tables alike, test_lake_tables.py).
        mp.setenv("ML_PLATFORM_LAKE_TABLES", "false")
        data_dir = state.data_dir
        from ml_platform.clean.write import create_clean_tables
        from ml_platform.declarations import discover_curated_tables, discover_labels, discover_specs
        from ml_platform.definitions import partition_columns
        from ml_platform.warehouse import sql

        specs = discover_specs()
        tables = [*discover_curated_tables(), *discover_labels()]
        read = {t for table in tables for t in table.upstream_tables}
        warehouse = data_dir / "warehouse.duckdb"
        con = connect(warehouse)
        try:
            con.execute(
                "CREATE TEMP TABLE days AS SELECT CAST(d AS DATE) AS d, CAST(n AS INTEGER) AS n FROM"
                f" (SELECT {sql.literal(FIRST)} + CAST(i AS INTEGER) AS d, i AS n FROM range({DAYS}) t(i))"
            )
            for spec in specs:
                create_clean_tables(con, spec)
                if spec.clean_table not in ROWS:
                    # clean_stream_events: no curated table reads it (the stream views read raw batches).
                    assert spec.clean_table not in read, f"{spec.clean_table} is read: give it rows in ROWS"
                    continue
                rows = ROWS[spec.clean_table].replace("FIRST_DAY", sql.literal(FIRST))
                con.execute(f"INSERT INTO {sql.ident(spec.clean_table)} BY NAME {rows}")
            for raw in RAW_CLOCKS:
                con.execute(
                    f"INSERT INTO {sql.ident(raw)} SELECT d, 'f.csv', 1, now()::TIMESTAMP, 'v1', '{{}}' FROM days"
                )
            window = (FIRST, LAST)
            con.execute("BEGIN")
            for table in tables:
                table.write(con, window)
            con.execute("COMMIT")
            counts = {t.name: con.execute(f"SELECT count(*) FROM {sql.ident(t.name)}").fetchone()[0] for t in tables}
        finally:
            con.close()
        # Not vacuous: every table holds rows, churn labels (final from day 33 back) included.
        assert all(counts.values()), counts
        days = [FIRST + dt.timedelta(days=i) for i in range(DAYS)]
        yield warehouse, days, tables, partition_columns(specs, tables)


# Days where a narrowed declaration shows: churn labels final (4, 8), the snapshot changes (10, 25),
# lifetime values and the single payment reaching more than 30 days back (35), the last day.
SAMPLED = (4, 8, 10, 25, 35, DAYS - 1)


def _audit(built, tables, sampled: bool = False):
    warehouse, days, _, columns = built
    if sampled:
        days = [days[i] for i in SAMPLED]
    return {r.table: r for r in audit_tables(warehouse, tables, columns, days)}


def test_every_partition_equals_its_recomputation_from_only_what_it_declares(built):
    from ml_platform.declarations import discover_stream_views

    _, days, tables, _ = built
    results = _audit(built, tables)
    assert sorted(results) == sorted(t.name for t in tables)
    # Every curated table and label; the stream feature views are not among them (module docstring).
    streamed = {v.name for v in discover_stream_views()}
    assert streamed == {"user_activity_1h", "user_activity_5m"} and not streamed & set(results)
    for name, result in results.items():
        assert result.findings == [], name
        # Every day of a table automation keeps whole; the days it builds of a latest-days table.
        automated = next(t.automated_days for t in tables if t.name == name)
        assert result.checked[-1] == days[-1].isoformat(), name
        assert len(result.checked) >= min(automated or DAYS, DAYS), name


@pytest.mark.parametrize(
    ("table", "narrowed", "why"),
    [
        ("user_activity", Read.days("clean_events", -30, -1), "lifetime values read every day before"),
        ("user_transactions", Read.days("clean_transactions", -30, -1), "days since the last payment read all history"),
        ("churn_label", Read.days("clean_events", 0, 29), "who is a customer reads purchases before the day"),
        ("device_health", Read.days("clean_telemetry", 0, 0), "the 24 hours of the first hours reach the day before"),
        ("user_daily_features", Read.snapshot("clean_users", -1), "attributes are the versions valid that day"),
        ("device_failure_label", Read.days("clean_maintenance", 0, 0), "a failure the next morning counts"),
    ],
)
def test_an_undeclared_read_is_found(built, table, narrowed, why):
    """With a declaration narrower than what its SQL reads, the recomputation differs."""
    _, _, tables, _ = built
    [declared] = [t for t in tables if t.name == table]
    kept = tuple(r for r in declared.reads if (r if isinstance(r, str) else r.table) != narrowed.table)
    wrong = dataclasses.replace(declared, reads=(narrowed, *kept))
    assert _audit(built, [wrong], sampled=True)[table].findings, why
