"""Step 2 of an API source run: the stored responses of a window become its raw records.

In one transaction the raw window is replaced with one row per record, unnested set-based with
DuckDB's JSON functions from the stored bodies, and one ingest-ledger row is written per
response. It reads only the stored responses, never the API.
"""

import datetime as dt

import dagster as dg
import duckdb

from ml_platform.ingestion.api.responses import create_responses_table
from ml_platform.ingestion.api.spec import ApiSourceSpec
from ml_platform.partitions import window_label
from ml_platform.raw.table import detect_schema_version, record_batch, replace_raw_window
from ml_platform.warehouse import sql
from ml_platform.warehouse.sql import DateWindow, window_days

LEDGER_FORMAT = "json"


def _check_stored(con: duckdb.DuckDBPyConnection, spec: ApiSourceSpec, window: DateWindow) -> None:
    """Every (day, location) has a stored response, and each holds a JSON list at records_path."""
    table = sql.ident(spec.responses_table)
    stored = set(
        con.execute(
            f"SELECT landing_date, location FROM {table} WHERE {sql.in_window('landing_date', window)}"
        ).fetchall()
    )
    missing = [
        spec.batch_name(loc, day) for day in window_days(window) for loc in spec.locations if (day, loc) not in stored
    ]
    if missing:
        raise dg.Failure(
            f"{spec.responses_table} holds no response for {len(missing)} request(s) of {window_label(window)}: "
            f"{missing[:10]}. Run without reprocess to fetch them.",
            allow_retries=False,
        )
    path = sql.literal(spec.records_path)
    unusable = con.execute(
        f"""SELECT source_file, CASE WHEN json_valid(body) THEN 'no JSON list at ' || {path} ELSE 'body is not JSON' END
            FROM {table}
            WHERE {sql.in_window("landing_date", window)}
              AND coalesce(json_type(CASE WHEN json_valid(body) THEN body END, {path}) <> 'ARRAY', TRUE)
            ORDER BY source_file"""
    ).fetchall()
    if unusable:
        raise dg.Failure(
            f"{len(unusable)} stored response(s) of {spec.name} {window_label(window)} cannot be read: "
            f"{[f'{f}: {why}' for f, why in unusable[:10]]}. They stay in {spec.responses_table}; "
            "fix the spec's records_path (or the API) and re-run, with reprocess=true to reuse them.",
            allow_retries=False,
        )


def load_raw_from_responses(
    con: duckdb.DuckDBPyConnection, spec: ApiSourceSpec, window: DateWindow, ingested_at: dt.datetime
) -> tuple[list[dict], int]:
    """Replace the raw window with one row per record of the stored responses (call inside one
    transaction). Returns the ledger rows and the number of responses without records."""
    create_responses_table(con, spec)
    _check_stored(con, spec, window)
    table = sql.ident(spec.responses_table)
    path = sql.literal(spec.records_path)
    if spec.location_field:
        # The requested location joins each record that does not name its own.
        field = sql.literal(spec.location_field)
        field_path = sql.json_path(spec.location_field)
        record = (
            f"CASE WHEN json_type(record) = 'OBJECT' AND NOT json_exists(record, {field_path}) "
            f"THEN json_merge_patch(record, json_object({field}, location)) ELSE record END"
        )
    else:
        record = "record"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _api_records AS
        WITH responses AS (
          SELECT landing_date, location, source_file, CAST(json_extract(body, {path}) AS JSON[]) AS records
          FROM {table} WHERE {sql.in_window("landing_date", window)}
        ),
        unnested AS (
          SELECT landing_date, location, source_file,
                 generate_subscripts(records, 1) AS source_row, unnest(records) AS record
          FROM responses
        )
        SELECT landing_date, source_file, source_row, ({record})::JSON AS record FROM unnested
        """
    )
    batches = con.execute(
        """SELECT landing_date, source_file, count(*) AS rows,
                  list_sort(list_distinct(flatten(list(json_keys(record))))) AS columns
           FROM _api_records GROUP BY landing_date, source_file ORDER BY landing_date, source_file"""
    ).fetchall()
    responses = con.execute(f"SELECT count(*) FROM {table} WHERE {sql.in_window('landing_date', window)}").fetchone()[0]
    versions = [(day, source_file, detect_schema_version(spec, columns)) for day, source_file, _, columns in batches]

    replace_raw_window(con, spec, window)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _api_batches (landing_date DATE, source_file VARCHAR, schema_version VARCHAR)"
    )
    if versions:
        con.executemany("INSERT INTO _api_batches VALUES (?, ?, ?)", versions)
    con.execute(
        f"""INSERT INTO {sql.ident(spec.raw_table)}
            SELECT r.landing_date, r.source_file, r.source_row, {sql.literal(ingested_at)}, b.schema_version, r.record
            FROM _api_records r JOIN _api_batches b USING (landing_date, source_file)
            ORDER BY r.landing_date, r.source_file, r.source_row"""
    )
    ledger = [
        record_batch(
            con,
            spec,
            landing_date=day,
            source_file=source_file,
            format=LEDGER_FORMAT,
            row_count=rows,
            columns=columns,
            schema_version=version,
            ingested_at=ingested_at,
        )
        for (day, source_file, rows, columns), (_, _, version) in zip(batches, versions, strict=True)
    ]
    con.execute("DROP TABLE _api_records")
    con.execute("DROP TABLE _api_batches")
    return ledger, responses - len(batches)
