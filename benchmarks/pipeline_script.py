"""Contender 2, the limit: the whole pipeline as one hand-written DuckDB SQL script, no orchestration.

    python benchmarks/pipeline_script.py DATA_DIR OUT.duckdb FIRST_DAY LAST_DAY

It does what the platform does to the same landing files, in one process and one database file:
reads the events (CSV, JSON Lines, Parquet; every value as text, an empty value as NULL (the
only null marker the events source has), `device` as an alias of `device_type`), converts event times to UTC
(an explicit offset wins, otherwise UTC), types values with TRY_CAST, gives each row its owning
day (its UTC event day if within [landing - 3, landing + 1], else its landing day), applies the
contract's rules (keys not null and free of control characters, no nested JSON values, readable
time not beyond the tolerance, known event type and device, amount a number in [0, 10000]),
quarantines the rows that break one, keeps the latest copy of each event id per day, rebuilds
the users' history from the daily snapshots and writes `user_daily_features` with the same
aggregation as platform/ml_platform/declarations/features/user_daily_features.py. No ledger, no accounting,
no Dagster: that is what makes it the limit.

    python benchmarks/pipeline_script.py --layers DATA_DIR OUT.duckdb FIRST_DAY LAST_DAY

is the limit for the platform's own layout ("layered" in the benchmark): the same script, except
that the events are first persisted the way the platform's raw layer keeps them (one row per
landed row with its file, row number, landing day and ingestion time, the values as a JSON record
of text, written file by file) and the clean layer reads them back from there. The difference
between the two is what keeping a raw layer costs in DuckDB alone, without Dagster.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import duckdb

NULLS = "('')"
EVENT_COLUMNS = ("event_id", "user_id", "event_type", "event_time", "product_id", "amount", "device_type", "session_id")


def _text(expr: str) -> str:
    return f"CASE WHEN {expr} IN {NULLS} THEN NULL ELSE {expr} END"


def _files(data_dir: Path, source: str, suffix: str) -> str:
    paths = sorted((data_dir / "landing" / source).glob(f"*/[!._]*.{suffix}"))
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]" if paths else ""


def _flat_scan(scan: str, columns: set[str]) -> str:
    """A CSV or Parquet scan as (file, canonical text columns); `device` is device_type's alias."""
    cols = []
    for c in EVENT_COLUMNS:
        names = [n for n in ((c, "device") if c == "device_type" else (c,)) if n in columns]
        value = f"COALESCE({', '.join(f'CAST({n} AS VARCHAR)' for n in names)})" if names else "NULL"
        cols.append(f"{_text(value)} AS {c}")
    return f"SELECT filename AS source_file, FALSE AS nested, {', '.join(cols)} FROM {scan}"


def _json_scan(table: str, file_column: str, record: str) -> str:
    """Rows of JSON objects (a JSON Lines scan, or the raw layer) as (file, nested, canonical text columns)."""
    field = {c: f"{record} ->> '$.{c}'" for c in EVENT_COLUMNS}
    field["device_type"] = f"COALESCE({record} ->> '$.device_type', {record} ->> '$.device')"
    nested = " OR ".join(
        f"coalesce(json_type({record}, '$.{c}') IN ('ARRAY', 'OBJECT'), false)" for c in (*EVENT_COLUMNS, "device")
    )
    return (
        f"SELECT {file_column} AS source_file, ({nested}) AS nested, "
        + ", ".join(f"{_text(v)} AS {c}" for c, v in field.items())
        + f" FROM {table}"
    )


def _landed_files(con: duckdb.DuckDBPyConnection, data_dir: Path) -> str:
    """The landed event files read in place, as one query of canonical text columns."""
    parts = []
    csv = _files(data_dir, "events", "csv")
    if csv:
        scan = f"read_csv({csv}, all_varchar = true, union_by_name = true, filename = true, header = true)"
        parts.append(_flat_scan(scan, _columns(con, scan)))
    parquet = _files(data_dir, "events", "parquet")
    if parquet:
        scan = f"read_parquet({parquet}, union_by_name = true, filename = true)"
        parts.append(_flat_scan(scan, _columns(con, scan)))
    jsonl = _files(data_dir, "events", "jsonl")
    if jsonl:
        parts.append(
            _json_scan(f"read_json_objects({jsonl}, format = 'newline_delimited', filename = true)", "filename", "json")
        )
    return " UNION ALL ".join(parts)


def _raw_layer(con: duckdb.DuckDBPyConnection, data_dir: Path) -> str:
    """--layers: persist every landed row as the platform's raw table does, file by file in one
    transaction, and return the query that reads them back as canonical text columns."""
    con.execute(
        "CREATE TABLE raw_events (landing_date DATE, source_file VARCHAR, source_row BIGINT,"
        " ingested_at TIMESTAMP, schema_version VARCHAR, record JSON)"
    )
    records = {
        # Every value as text, under the file's own column names.
        "csv": "SELECT to_json(t) AS record FROM read_csv({f}, all_varchar = true, header = true) t",
        "parquet": "SELECT to_json(t) AS record FROM (SELECT COLUMNS(*)::VARCHAR FROM read_parquet({f})) t",
        "jsonl": "SELECT json AS record FROM read_json_objects({f}, format = 'newline_delimited')",
    }
    con.execute("BEGIN TRANSACTION")
    for path in sorted((data_dir / "landing" / "events").glob("*/[!._]*.*")):
        if path.suffix[1:] not in records:
            continue
        f = "'" + str(path).replace("'", "''") + "'"
        con.execute(
            f"INSERT INTO raw_events SELECT DATE '{path.parent.name}', {f}, row_number() OVER (),"
            f" now()::TIMESTAMP, 'v1', record FROM ({records[path.suffix[1:]].format(f=f)})"
        )
    con.execute("COMMIT")
    return _json_scan("raw_events", "source_file", "record")


def main(data_dir: Path, out: Path, first: str, last: str, layers: bool = False) -> None:
    started = time.perf_counter()
    phases: dict[str, float] = {}

    def lap(name: str) -> None:
        phases[name] = time.perf_counter() - started - sum(phases.values())

    out.unlink(missing_ok=True)
    con = duckdb.connect(str(out))
    con.execute("SET TimeZone = 'UTC'")
    if layers:
        landed = _raw_layer(con, data_dir)
        lap("raw_layer")
    else:
        landed = _landed_files(con, data_dir)
    con.execute(
        f"""
CREATE TEMP TABLE staged AS
WITH landed AS ({landed}),
typed AS (
  SELECT *,
    CAST(regexp_extract(source_file, '(\\d{{4}}-\\d{{2}}-\\d{{2}})/[^/]*$', 1) AS DATE) AS landing_date,
    CASE WHEN isfinite(TRY_CAST(event_time AS TIMESTAMPTZ))
         THEN CAST(TRY_CAST(event_time AS TIMESTAMPTZ) AS TIMESTAMP) END AS ts,
    TRY_CAST(amount AS DOUBLE) AS amount_value
  FROM landed
),
owned AS (
  SELECT *, CAST(ts AS DATE) AS event_date,
    CASE WHEN ts IS NULL OR CAST(ts AS DATE) < landing_date - 3 OR CAST(ts AS DATE) > landing_date + 1
         THEN landing_date ELSE CAST(ts AS DATE) END AS day
  FROM typed
)
SELECT *,
  NOT nested
  AND event_id IS NOT NULL AND NOT regexp_matches(event_id, '[\\x00-\\x1f\\x7f]')
  AND user_id IS NOT NULL
  AND ts IS NOT NULL AND event_date BETWEEN landing_date - 3 AND landing_date + 1
  AND coalesce(event_type IN ('page_view', 'product_view', 'search', 'add_to_cart', 'remove_from_cart', 'purchase'),
               false)
  AND (amount IS NULL OR amount_value BETWEEN 0.0 AND 10000.0)
  AND (device_type IS NULL OR device_type IN ('mobile', 'desktop', 'tablet')) AS valid
FROM owned
"""
    )
    lap("read_type_validate")
    window = f"day BETWEEN DATE '{first}' AND DATE '{last}'"
    con.execute(f"CREATE TABLE quarantine_events AS SELECT * FROM staged WHERE NOT valid AND {window}")
    # The demo's copies of an event are identical, so the latest file's copy wins, as in the platform.
    con.execute(
        f"""CREATE TABLE clean_events AS
        SELECT event_id, user_id, event_type, ts AS event_time, event_date, product_id,
               amount_value AS amount, device_type, session_id, source_file, landing_date
        FROM staged WHERE valid AND {window}
        QUALIFY row_number() OVER (PARTITION BY day, event_id ORDER BY source_file DESC) = 1"""
    )
    con.execute("DROP TABLE staged")
    lap("quarantine_dedup_write")
    users = _files(data_dir, "users", "csv")
    # Users history: a version is a run of consecutive snapshots with the same attributes.
    con.execute(
        f"""CREATE TABLE clean_users AS
WITH snap AS (
  SELECT CAST(regexp_extract(filename, '(\\d{{4}}-\\d{{2}}-\\d{{2}})/[^/]*$', 1) AS DATE) AS day,
    {_text("user_id")} AS user_id, TRY_CAST({_text("signup_date")} AS DATE) AS signup_date,
    {_text("country")} AS country, {_text("plan")} AS plan, filename AS source_file
  FROM read_csv({users}, all_varchar = true, union_by_name = true, filename = true, header = true)
),
days AS (SELECT day, row_number() OVER (ORDER BY day) AS idx FROM (SELECT DISTINCT day FROM snap)),
present AS (
  SELECT s.*, d.idx FROM snap s JOIN days d USING (day)
  WHERE user_id IS NOT NULL AND signup_date IS NOT NULL
    AND (country IS NULL OR regexp_matches(country, '^(?:[A-Z]{{2}}$)'))
    AND (plan IS NULL OR plan IN ('free', 'plus', 'pro'))
  QUALIFY row_number() OVER (PARTITION BY day, user_id ORDER BY source_file DESC) = 1
),
starts AS (
  SELECT *, CASE WHEN idx - lag(idx) OVER k = 1 AND (signup_date, country, plan)
                 IS NOT DISTINCT FROM lag((signup_date, country, plan)) OVER k THEN 0 ELSE 1 END AS new
  FROM present WINDOW k AS (PARTITION BY user_id ORDER BY idx)
),
versions AS (SELECT *, sum(new) OVER (PARTITION BY user_id ORDER BY idx) AS version FROM starts),
spans AS (
  SELECT user_id, any_value(signup_date) AS signup_date, arg_min(country, idx) AS country,
    arg_min(plan, idx) AS plan, min(day) AS valid_from, max(idx) AS last_idx
  FROM versions GROUP BY user_id, version
)
SELECT s.* EXCLUDE (last_idx), d.day AS valid_to FROM spans s LEFT JOIN days d ON d.idx = s.last_idx + 1"""
    )
    lap("users_history")
    con.execute(
        f"""CREATE TABLE user_daily_features AS
WITH events AS (SELECT * FROM clean_events),
daily AS (
  SELECT user_id, event_date, count(*) AS event_count,
    count(*) FILTER (WHERE event_type = 'purchase') AS transaction_count,
    count(DISTINCT product_id) AS unique_products,
    CAST(coalesce(sum(CAST(amount AS DECIMAL(38, 10))) FILTER (WHERE event_type = 'purchase'), 0) AS DOUBLE)
      AS daily_spend,
    avg(CAST(amount AS DECIMAL(38, 10))) FILTER (WHERE event_type = 'purchase') AS avg_transaction_value,
    max(amount) FILTER (WHERE event_type = 'purchase') AS max_transaction_value,
    count(*) FILTER (WHERE event_type = 'add_to_cart') AS cart_adds
  FROM events GROUP BY user_id, event_date
),
primary_devices AS (
  SELECT user_id, event_date, device_type AS primary_device
  FROM (SELECT user_id, event_date, device_type, count(*) AS uses FROM events WHERE device_type IS NOT NULL
        GROUP BY ALL)
  QUALIFY row_number() OVER (PARTITION BY user_id, event_date ORDER BY uses DESC, device_type) = 1
)
SELECT d.user_id, d.event_date AS feature_date, d.event_count, d.transaction_count, d.unique_products,
  d.daily_spend, d.avg_transaction_value, d.max_transaction_value, d.cart_adds, p.primary_device,
  CAST(d.event_date - u.signup_date AS BIGINT) AS days_since_signup
FROM daily d
LEFT JOIN primary_devices p USING (user_id, event_date)
LEFT JOIN clean_users u ON u.user_id = d.user_id AND d.event_date >= u.valid_from
  AND d.event_date < coalesce(u.valid_to, DATE '9999-12-31')
WHERE d.event_date BETWEEN DATE '{first}' AND DATE '{last}'"""
    )
    con.close()
    lap("features")
    # Phase times for the profile (pipeline_bench reads them back); the process's own start is not in them.
    out.with_suffix(".phases.json").write_text(json.dumps(phases))
    print(f"script: {time.perf_counter() - started:.2f} s {phases}", file=sys.stderr)


def _columns(con: duckdb.DuckDBPyConnection, scan: str) -> set[str]:
    return {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}


if __name__ == "__main__":
    layered = sys.argv[1:2] == ["--layers"]
    argv = sys.argv[2:] if layered else sys.argv[1:]
    main(Path(argv[0]), Path(argv[1]), argv[2], argv[3], layers=layered)
