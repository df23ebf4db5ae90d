"""Factory: a REST API source spec becomes its raw asset, daily schedule and API resource.

A run of `raw_<name>` covers a window of observation days (one partition or a single-run
backfill). It works in two committed steps:

1. Fetch: one GET per day and location (rate limited, retried; see api_client.py), then store
   every response as received in `raw_<name>_responses` (delete the window, insert; its own
   transaction, committed before anything is transformed).
2. Transform: in a second transaction, replace the window of `raw_<name>` with one row per
   record, unnested set-based with DuckDB's JSON functions from the stored bodies, and write one
   ingest-ledger row per response. The shared clean asset does the rest.

Because step 2 reads only the stored responses, a run with config `reprocess: true` (or the run
tag `ml_platform/reprocess=true`, handy for backfills) skips step 1 and rebuilds the raw window
from what was stored, without calling the API: after a records_path fix, a contract change, or
when the API is down.

The base URL and API key reach the run through a Dagster resource built from `dg.EnvVar`, so
their values live only in the environment: never in code, metadata or the run's config.
"""

import datetime as dt
import os

import dagster as dg
import duckdb
from pydantic import Field

from ml_platform import settings
from ml_platform.contracts.table_contract import quote, sql_literal
from ml_platform.ingestion.api_client import ApiClient, ApiError, ApiResponse
from ml_platform.ingestion.raw_files import detect_schema_version, record_batch, replace_raw_window
from ml_platform.ingestion.schema_check import evaluate_schema, schema_check_spec
from ml_platform.partitions import WAREHOUSE_POOL, DateWindow, daily_partitions, run_window, window_label
from ml_platform.sources.api_spec import ApiSourceSpec

REPROCESS_TAG = "ml_platform/reprocess"
LEDGER_FORMAT = "json"
# Dagster's own retries, on top of the client's: for outages longer than the client's patience.
STEP_RETRY_POLICY = dg.RetryPolicy(max_retries=3, delay=30, backoff=dg.Backoff.EXPONENTIAL)

RESPONSES_COLUMNS = """
  landing_date DATE NOT NULL,
  location VARCHAR NOT NULL,
  source_file VARCHAR NOT NULL,
  url VARCHAR NOT NULL,
  status INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  fetched_at TIMESTAMP NOT NULL,
  body VARCHAR NOT NULL
"""


class ApiSourceResource(dg.ConfigurableResource):
    """Where an API source's data comes from. Build it with `dg.EnvVar`s: values stay in the environment."""

    base_url: str = Field(description="Base URL of the API (from the source's base_url_env).")
    api_key: str | None = Field(default=None, description="API key, sent as a header (from api_key_env).")

    def client(self, spec: ApiSourceSpec, **overrides) -> ApiClient:
        options = dict(
            api_key=self.api_key, api_key_header=spec.api_key_header,
            requests_per_second=spec.requests_per_second, max_attempts=spec.max_attempts,
            backoff_base_seconds=spec.backoff_base_seconds, backoff_max_seconds=spec.backoff_max_seconds,
            timeout_seconds=spec.timeout_seconds,
        )
        return ApiClient(self.base_url, **{**options, **overrides})


class ApiRawConfig(dg.Config):
    reprocess: bool = Field(
        default=False,
        description="Rebuild the raw window from the stored API responses, without calling the API.",
    )


def api_resource(spec: ApiSourceSpec) -> ApiSourceResource:
    # The key is optional at load time: a deployment that sets the variable sends it; without it
    # requests go without a key (an API that needs one answers 401, which fails the run at once).
    with_key = spec.api_key_env is not None and os.environ.get(spec.api_key_env) is not None
    return ApiSourceResource(
        base_url=dg.EnvVar(spec.base_url_env),
        api_key=dg.EnvVar(spec.api_key_env) if with_key else None,
    )


def window_days(window: DateWindow) -> list[dt.date]:
    return [window[0] + dt.timedelta(days=i) for i in range((window[1] - window[0]).days + 1)]


def create_responses_table(con: duckdb.DuckDBPyConnection, spec: ApiSourceSpec) -> None:
    con.execute(f"CREATE TABLE IF NOT EXISTS {quote(spec.responses_table)} ({RESPONSES_COLUMNS})")


def fetch_window(client: ApiClient, spec: ApiSourceSpec, window: DateWindow) -> list[tuple]:
    """One response per (day, location) as rows of the responses table; raises ApiError."""
    rows = []
    for day in window_days(window):
        for location in spec.locations:
            response: ApiResponse = client.get(spec.path, {"location": location, "date": day.isoformat()})
            rows.append((day, location, spec.batch_name(location, day), response.url, response.status,
                         response.attempts, response.fetched_at, response.text))
    return rows


def store_responses(con: duckdb.DuckDBPyConnection, spec: ApiSourceSpec, window: DateWindow, rows: list[tuple]) -> None:
    """Replace the window's stored responses (call inside one transaction)."""
    create_responses_table(con, spec)
    table = quote(spec.responses_table)
    con.execute(f"DELETE FROM {table} WHERE landing_date BETWEEN ? AND ?", list(window))
    if rows:
        con.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)


def _check_stored(con: duckdb.DuckDBPyConnection, spec: ApiSourceSpec, window: DateWindow) -> None:
    """Every (day, location) has a stored response, and each holds a JSON list at records_path."""
    table = quote(spec.responses_table)
    stored = set(con.execute(
        f"SELECT landing_date, location FROM {table} WHERE landing_date BETWEEN ? AND ?", list(window)
    ).fetchall())
    missing = [spec.batch_name(loc, day) for day in window_days(window) for loc in spec.locations
               if (day, loc) not in stored]
    if missing:
        raise dg.Failure(
            f"{spec.responses_table} holds no response for {len(missing)} request(s) of {window_label(window)}: "
            f"{missing[:10]}. Run without reprocess to fetch them.",
            allow_retries=False,
        )
    path = sql_literal(spec.records_path)
    unusable = con.execute(
        f"""SELECT source_file, CASE WHEN json_valid(body) THEN 'no JSON list at ' || {path} ELSE 'body is not JSON' END
            FROM {table}
            WHERE landing_date BETWEEN ? AND ?
              AND coalesce(json_type(CASE WHEN json_valid(body) THEN body END, {path}) <> 'ARRAY', TRUE)
            ORDER BY source_file""",
        list(window),
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
    table = quote(spec.responses_table)
    path = sql_literal(spec.records_path)
    if spec.location_field:
        # The requested location joins each record that does not name its own.
        field = sql_literal(spec.location_field)
        field_path = sql_literal('$."' + spec.location_field.replace('"', '\\"') + '"')
        record = (f"CASE WHEN json_type(record) = 'OBJECT' AND NOT json_exists(record, {field_path}) "
                  f"THEN json_merge_patch(record, json_object({field}, location)) ELSE record END")
    else:
        record = "record"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _api_records AS
        WITH responses AS (
          SELECT landing_date, location, source_file, CAST(json_extract(body, {path}) AS JSON[]) AS records
          FROM {table} WHERE landing_date BETWEEN ? AND ?
        ),
        unnested AS (
          SELECT landing_date, location, source_file,
                 generate_subscripts(records, 1) AS source_row, unnest(records) AS record
          FROM responses
        )
        SELECT landing_date, source_file, source_row, ({record})::JSON AS record FROM unnested
        """,
        list(window),
    )
    batches = con.execute(
        """SELECT landing_date, source_file, count(*) AS rows,
                  list_sort(list_distinct(flatten(list(json_keys(record))))) AS columns
           FROM _api_records GROUP BY landing_date, source_file ORDER BY landing_date, source_file"""
    ).fetchall()
    responses = con.execute(
        f"SELECT count(*) FROM {table} WHERE landing_date BETWEEN ? AND ?", list(window)
    ).fetchone()[0]
    versions = [(day, source_file, detect_schema_version(spec, columns)) for day, source_file, _, columns in batches]

    replace_raw_window(con, spec, window)
    con.execute("CREATE OR REPLACE TEMP TABLE _api_batches (landing_date DATE, source_file VARCHAR, schema_version VARCHAR)")
    if versions:
        con.executemany("INSERT INTO _api_batches VALUES (?, ?, ?)", versions)
    con.execute(
        f"""INSERT INTO {quote(spec.raw_table)}
            SELECT r.landing_date, r.source_file, r.source_row, ?::TIMESTAMP, b.schema_version, r.record
            FROM _api_records r JOIN _api_batches b USING (landing_date, source_file)
            ORDER BY r.landing_date, r.source_file, r.source_row""",
        [ingested_at],
    )
    ledger = [
        record_batch(con, spec, landing_date=day, source_file=source_file, format=LEDGER_FORMAT, row_count=rows,
                     columns=columns, schema_version=version, ingested_at=ingested_at)
        for (day, source_file, rows, columns), (_, _, version) in zip(batches, versions, strict=True)
    ]
    con.execute("DROP TABLE _api_records")
    con.execute("DROP TABLE _api_batches")
    return ledger, responses - len(batches)


def _wants_reprocess(context: dg.AssetExecutionContext, config: ApiRawConfig) -> bool:
    return config.reprocess or context.run.tags.get(REPROCESS_TAG, "").strip().lower() in ("1", "true", "yes")


def api_raw_asset(spec: ApiSourceSpec) -> dg.AssetsDefinition:
    key = dg.AssetKey(spec.raw_table)
    partitions_def = daily_partitions()

    @dg.asset(
        name=spec.raw_table,
        group_name="raw",
        kinds={"duckdb", "api"},
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
        retry_policy=STEP_RETRY_POLICY,
        required_resource_keys={"warehouse", spec.resource_key},
        owners=[spec.owner],
        tags={"source": spec.name, **spec.tags},
        description=(
            f"{spec.description}\n\nGET {spec.path}?location=..&date=YYYY-MM-DD for {', '.join(spec.locations)}, "
            f"records at `{spec.records_path}`: one partition per observation day (UTC), values kept as sent, "
            f"with lineage. Responses are kept in `{spec.responses_table}`; run with config `reprocess: true` "
            f"(or tag `{REPROCESS_TAG}=true`) to rebuild from them without calling the API."
        ),
        check_specs=[schema_check_spec(key, spec, partitions_def)],
    )
    def _raw(context: dg.AssetExecutionContext, config: ApiRawConfig):
        warehouse = context.resources.warehouse
        window = run_window(context)
        reprocess = _wants_reprocess(context, config)
        requests_made = 0
        if not reprocess:
            api: ApiSourceResource = getattr(context.resources, spec.resource_key)
            try:
                with api.client(spec, logger=context.log) as client:
                    rows = fetch_window(client, spec, window)
            except ApiError as exc:
                if not exc.retryable:
                    raise dg.Failure(str(exc), allow_retries=False) from None
                raise
            requests_made = sum(r[5] for r in rows)
            # Committed on its own: the responses survive a failure of the transform below.
            with warehouse.transaction() as con:
                store_responses(con, spec, window, rows)
            context.log.info(f"{spec.responses_table} {window_label(window)}: stored {len(rows)} responses "
                             f"({requests_made} requests)")
        ingested_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        with warehouse.transaction() as con:
            ledger, empty = load_raw_from_responses(con, spec, window, ingested_at)
            schema = evaluate_schema(con, spec, window)
        records = sum(entry["rows"] for entry in ledger)
        context.log.info(f"{spec.raw_table} {window_label(window)}: {records} records from {len(ledger) + empty} "
                         f"responses ({'re-processed from stored responses' if reprocess else 'fetched'})")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": records,
                "mode": "reprocess" if reprocess else "fetch",
                "responses": len(ledger) + empty,
                "empty_responses": empty,
                "requests": requests_made,
                "schema_versions": ", ".join(sorted({e["schema_version"] for e in ledger})) or "none",
                "ingested_batches": dg.MetadataValue.json(ledger),
            },
            check_results=[schema],
        )

    return _raw


def api_schedule(spec: ApiSourceSpec, raw: dg.AssetsDefinition) -> dg.ScheduleDefinition | None:
    """Daily, shortly after midnight UTC: yesterday's partition, once the API has the full day.

    It runs by default only if the base URL variable is set when the definitions load: without an
    endpoint every run would fail at resource setup, so a fresh `make dev` (no API configured)
    stays quiet instead of producing a failed run a day. Starting or stopping it in the UI
    overrides the default.
    """
    if spec.schedule_cron is None:
        return None
    configured = bool(os.environ.get(spec.base_url_env))
    first_day = dt.date.fromisoformat(settings.partitions_start_date())

    @dg.schedule(
        name=f"{spec.name}_daily_schedule",
        cron_schedule=spec.schedule_cron,
        execution_timezone="UTC",
        target=dg.AssetSelection.assets(raw.key),
        default_status=dg.DefaultScheduleStatus.RUNNING if configured else dg.DefaultScheduleStatus.STOPPED,
        description=f"Fetches yesterday's (UTC) {spec.name} observations; needs {spec.base_url_env}.",
    )
    def _daily(context: dg.ScheduleEvaluationContext):
        at = context.scheduled_execution_time or dt.datetime.now(dt.timezone.utc)
        day = at.astimezone(dt.timezone.utc).date() - dt.timedelta(days=1)
        if day < first_day:
            return dg.SkipReason(f"{day} is before the first partition {first_day}")
        return dg.RunRequest(run_key=f"{spec.name}:{day.isoformat()}", partition_key=day.isoformat())

    return _daily


def api_source_definitions(spec: ApiSourceSpec) -> dict:
    """Keyword arguments of SourceDefinitions: the raw asset first, the schedule, the API resource."""
    raw = api_raw_asset(spec)
    schedule = api_schedule(spec, raw)
    return {
        "assets": [raw],
        "schedules": [schedule] if schedule else [],
        "resources": {spec.resource_key: api_resource(spec)},
    }
