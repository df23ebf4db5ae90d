"""What is read from a PostgreSQL source: the pushed-down queries and the incremental append to raw.

Extraction is set-based inside DuckDB: one pushed-down query per run window. For each creation
day (UTC) of the window it pulls the rows created that day whose updated_at is above the day's
high-water mark in raw minus the overlap, turns each row into a JSON record of text values
(timestamps with time zone as UTC ISO text), and streams them in Arrow batches into the raw run
(`raw.lake_run`). Only versions raw does not hold yet (anti-join on key + updated_at) are appended, so
re-running a day is idempotent and updates and soft deletes arrive as new versions. Every day that
got rows gets one `ingest_ledger` row.
"""

import datetime as dt

import duckdb

from ml_platform.ingestion.postgres.connection import ATTACHED, PostgresResource, PostgresSourceError, masked_query
from ml_platform.ingestion.postgres.spec import PostgresSourceSpec
from ml_platform.raw.table import create_raw_tables, detect_schema_version, record_batch
from ml_platform.warehouse import sql
from ml_platform.warehouse.sql import DateWindow, utc_iso, window_days

# Rows per Arrow batch streamed from PostgreSQL into the run: memory stays bounded.
BATCH_ROWS = 50_000
_CREATED_DATE = "__ml_platform_created_date"


# --- PostgreSQL text, run by the source ---------------------------------------------------------


def _pg_table(spec: PostgresSourceSpec) -> str:
    return sql.qualified(spec.schema_name, spec.table_name)


def _created_date_pg(spec: PostgresSourceSpec) -> str:
    return f"(({sql.ident(spec.event_time_column)})::timestamptz AT TIME ZONE 'UTC')::date"


def _pull_sql(spec: PostgresSourceSpec, marks: list[tuple[dt.date, dt.datetime | None]]) -> str:
    """PostgreSQL query: rows created on each day, updated after that day's mark minus the overlap."""
    values = ", ".join(
        f"({sql.literal(day)}, {sql.timestamptz_literal(mark) if mark else 'NULL::timestamptz'})" for day, mark in marks
    )
    created, updated = sql.ident(spec.event_time_column), sql.ident(spec.updated_at_column)
    return f"""WITH marks(day, mark) AS (VALUES {values})
SELECT t.*, marks.day AS {_CREATED_DATE}
FROM {_pg_table(spec)} t
JOIN marks ON t.{created} >= (marks.day::timestamp AT TIME ZONE 'UTC')
  AND t.{created} < ((marks.day + 1)::timestamp AT TIME ZONE 'UTC')
WHERE marks.mark IS NULL OR t.{updated} > marks.mark - {_overlap(spec)}"""


def _overlap(spec: PostgresSourceSpec) -> str:
    return f"INTERVAL {sql.literal(f'{int(spec.overlap_minutes)} minutes')}"


def _scan(pg_sql: str) -> str:
    """DuckDB table function running `pg_sql` on the source as written (pushed down)."""
    return f"postgres_query({sql.literal(ATTACHED)}, {sql.literal(pg_sql)})"


# --- DuckDB text, run on the raw records ---------------------------------------------------------


def _key_sql(spec: PostgresSourceSpec, record: str = "record") -> str:
    return "[" + ", ".join(sql.json_text(record, k) for k in spec.key_columns) + "]"


def _version_sql(spec: PostgresSourceSpec, record: str = "record") -> str:
    return sql.utc_timestamp(sql.json_text(record, spec.updated_at_column), spec.event_time_zone)


def _text_sql(column: str, duckdb_type: str) -> str:
    col = sql.ident(column)
    if duckdb_type.startswith("TIMESTAMP WITH TIME ZONE"):
        return f"(strftime(timezone('UTC', {col}), '%Y-%m-%dT%H:%M:%S.%f') || '+00:00')"
    return f"CAST({col} AS VARCHAR)"


# --- extraction ----------------------------------------------------------------------------------


def extract_window(
    con: duckdb.DuckDBPyConnection,
    pg: duckdb.DuckDBPyConnection,
    resource: PostgresResource,
    spec: PostgresSourceSpec,
    window: DateWindow,
    ingested_at: dt.datetime,
) -> list[dict]:
    """Append the window's new row versions to raw (in `con`'s transaction); one entry per day."""
    create_raw_tables(con, spec)
    raw = sql.ident(spec.raw_table)
    marks = dict(
        con.execute(
            f"SELECT landing_date, max({_version_sql(spec)}) FROM {raw} WHERE {sql.in_window('landing_date', window)} GROUP BY 1"
        ).fetchall()
    )
    days = window_days(window)
    scan = _scan(_pull_sql(spec, [(d, marks.get(d)) for d in days]))

    described = masked_query(
        resource, spec, lambda: pg.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall(), "describing"
    )
    types = {row[0]: row[1] for row in described if row[0] != _CREATED_DATE}
    columns = list(types)
    missing = [c for c in (*spec.key_columns, spec.event_time_column, spec.updated_at_column) if c not in types]
    if missing:
        raise PostgresSourceError(f"{spec.name}: {spec.table} has no column(s) {missing}")
    record = "to_json(struct_pack(" + ", ".join(f"{sql.ident(c)} := {_text_sql(c, t)}" for c, t in types.items()) + "))"

    def pull():
        reader = pg.execute(
            f"SELECT {sql.ident(_CREATED_DATE)}::DATE AS landing_date, CAST({record} AS VARCHAR) AS record FROM {scan}"
        ).fetch_record_batch(BATCH_ROWS)
        con.register("_pg_stream", reader)
        try:
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE _pg_pulled AS
                SELECT landing_date, record::JSON AS record, {_key_sql(spec)} AS _key, {_version_sql(spec)} AS _version
                FROM _pg_stream"""
            )
        finally:
            con.unregister("_pg_stream")

    masked_query(resource, spec, pull, "reading")
    # Versions raw already holds (re-runs, the overlap) are not appended again.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _pg_new AS
        SELECT * FROM _pg_pulled p
        WHERE NOT EXISTS (
          SELECT 1 FROM {raw} r
          WHERE r.landing_date = p.landing_date AND {_key_sql(spec, "r.record")} = p._key
            AND {_version_sql(spec, "r.record")} IS NOT DISTINCT FROM p._version)
        QUALIFY row_number() OVER (PARTITION BY landing_date, _key, _version ORDER BY record::VARCHAR) = 1"""
    )
    pulled = dict(con.execute("SELECT landing_date, count(*) FROM _pg_pulled GROUP BY 1").fetchall())
    new = dict(con.execute("SELECT landing_date, count(*) FROM _pg_new GROUP BY 1").fetchall())
    version = detect_schema_version(spec, columns)
    extractions = []
    for day in days:
        mark = utc_iso(marks.get(day))
        entry = {
            "day": day.isoformat(),
            "high_water_mark": mark,
            "pulled": pulled.get(day, 0),
            "appended": new.get(day, 0),
        }
        if entry["appended"]:
            source_file = f"postgres:{spec.table}@{mark or 'initial'}"
            con.execute(
                f"""INSERT INTO {raw}
                SELECT landing_date, {sql.literal(source_file)}, row_number() OVER (ORDER BY _key, _version),
                       {sql.literal(ingested_at)}, {sql.literal(version)}, record
                FROM _pg_new WHERE landing_date = {sql.literal(day)}"""
            )
            entry["ledger"] = record_batch(
                con,
                spec,
                landing_date=day,
                source_file=source_file,
                format="postgres",
                row_count=entry["appended"],
                columns=columns,
                schema_version=version,
                ingested_at=ingested_at,
            )
        extractions.append(entry)
    con.execute("DROP TABLE _pg_pulled")
    con.execute("DROP TABLE _pg_new")
    return extractions


def changed_days(
    pg: duckdb.DuckDBPyConnection, resource: PostgresResource, spec: PostgresSourceSpec, since: dt.datetime | None
) -> list[tuple[dt.date, dt.datetime]]:
    """(UTC creation day, newest updated_at) of rows changed after `since` minus the overlap."""
    updated = sql.ident(spec.updated_at_column)
    where = ""
    if since is not None:
        where = f"WHERE t.{updated} > {sql.timestamptz_literal(since)} - {_overlap(spec)}"
    poll_sql = f"""SELECT {_created_date_pg(spec)} AS created_date, max(t.{updated})::timestamptz AS max_updated_at
FROM {_pg_table(spec)} t {where}
GROUP BY 1 HAVING {_created_date_pg(spec)} IS NOT NULL ORDER BY 1"""
    rows = masked_query(resource, spec, lambda: pg.execute(f"SELECT * FROM {_scan(poll_sql)}").fetchall(), "polling")
    return [(day, ts.astimezone(dt.UTC).replace(tzinfo=None) if ts.tzinfo else ts) for day, ts in rows]
