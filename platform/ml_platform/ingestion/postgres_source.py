"""Factory: a PostgreSQL source spec becomes its raw asset (with the schema check) and change sensor.

Extraction is set-based inside DuckDB: an in-memory DuckDB loads the postgres extension from the
`duckdb-extension-postgres` wheel (offline, never INSTALL), ATTACHes the source READ_ONLY and runs
one pushed-down query per run window. For each creation day (UTC) of the window it pulls the rows
created that day whose updated_at is above the day's high-water mark in raw minus the overlap,
turns each row into a JSON record of text values (timestamps with time zone as UTC ISO text), and
streams them in Arrow batches into the warehouse transaction. Only versions raw does not hold yet
(anti-join on key + updated_at) are appended, so re-running a day is idempotent and updates and
soft deletes arrive as new versions. Every day that got rows gets one `ingest_ledger` row.

Credentials reach the code only through `PostgresResource`, whose fields are Dagster `EnvVar`s;
they never appear in code, logs, metadata or error text (the DuckDB/libpq errors, which quote
the connection string, are masked before they are raised).
"""


import datetime as dt
import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from ml_platform import settings
from ml_platform.contracts.table_contract import quote, sql_literal
from ml_platform.ingestion.clean_sql import _utc_timestamp
from ml_platform.ingestion.raw_files import create_raw_tables, detect_schema_version, record_batch
from ml_platform.ingestion.schema_check import evaluate_schema, schema_check_spec
from ml_platform.ingestion.source_definitions import SourceDefinitions, raw_builder
from ml_platform.partitions import WAREHOUSE_POOL, daily_partitions, run_window, window_label
from ml_platform.sources.postgres_spec import PostgresSourceSpec

# Rows per Arrow batch streamed from PostgreSQL into the warehouse: memory stays bounded.
BATCH_ROWS = 50_000
ATTACHED = "pg_source"
_CREATED_DATE = "__ml_platform_created_date"


class PostgresSourceError(RuntimeError):
    """The source could not be read. The message never holds the password."""

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        # The driver's (masked) reason, first line: for short messages such as a sensor's skip reason.
        self.detail = detail.strip().splitlines()[0] if detail.strip() else message


# --- the DuckDB postgres extension, offline -------------------------------------------------------


def postgres_extension_path() -> Path:
    """The extension shipped by the duckdb-extension-postgres wheel, under the file name DuckDB expects.

    DuckDB derives the entry point from the file name (`postgres_scanner_duckdb_cpp_init`), and the
    wheel ships it as `postgres.duckdb_extension`; a symlink named `postgres_scanner.duckdb_extension`
    makes `LOAD '<path>'` work without network access.
    """
    import duckdb_extension_postgres

    version = f"v{duckdb.__version__}"
    shipped = Path(duckdb_extension_postgres.__file__).parent / "extensions" / version / "postgres.duckdb_extension"
    if not shipped.exists():
        raise PostgresSourceError(
            f"the DuckDB postgres extension for DuckDB {version} is missing ({shipped}): install "
            f"duckdb-extension-postgres=={duckdb.__version__}"
        )
    folder = Path(tempfile.gettempdir()) / f"ml_platform-duckdb-extensions-{os.getuid()}" / version
    link = folder / "postgres_scanner.duckdb_extension"
    if not (link.is_symlink() and link.resolve() == shipped.resolve()):
        folder.mkdir(parents=True, exist_ok=True)
        staging = folder / f".link-{os.getpid()}"
        staging.unlink(missing_ok=True)
        staging.symlink_to(shipped)
        os.replace(staging, link)
    return link


# --- the connection ---------------------------------------------------------------------------


def _libpq_value(value) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


class PostgresResource(dg.ConfigurableResource):
    """Read-only connection to a PostgreSQL source. Set every field from `dg.EnvVar`, never literally."""

    host: str
    port: int
    db: str
    user: str
    password: str
    connect_timeout_seconds: int = 10

    @property
    def location(self) -> str:
        """Where the source is, for messages: no user, no password."""
        return f"{self.host}:{self.port}/{self.db}"

    def conninfo(self, timezone: str = "UTC") -> str:
        # The session zone reads `timestamp without time zone` columns in the source's zone.
        settings_ = {
            "host": self.host, "port": self.port, "dbname": self.db, "user": self.user, "password": self.password,
            "connect_timeout": self.connect_timeout_seconds, "application_name": "ml_platform",
            "options": f"-c TimeZone={timezone} -c default_transaction_read_only=on",
        }
        return " ".join(f"{k}={_libpq_value(v)}" for k, v in settings_.items())

    def mask(self, text: str) -> str:
        """Error text safe to log: the connection string and the password are removed."""
        if self.password:
            for form in sorted({_libpq_value(self.password), self.password.replace("'", "''"), self.password},
                               key=len, reverse=True):
                text = text.replace(form, "***")
        # DuckDB quotes the whole connection string: 'IO Error: Unable to connect to Postgres at "host=...": ...'
        text = re.sub(r'(IO Error: )?Unable to connect to Postgres at "[^"]*":\s*', "", text)
        text = re.sub(r'"[^"]*password=[^"]*"', f'"{self.location}"', text)
        return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", text, flags=re.IGNORECASE)


@contextmanager
def attached(resource: PostgresResource, spec: PostgresSourceSpec):
    """An in-memory DuckDB with the source ATTACHed READ_ONLY as `pg_source`."""
    con = duckdb.connect()
    try:
        failure = None
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.execute("SET autoinstall_known_extensions = false")
            con.execute("SET autoload_known_extensions = false")
            con.execute(f"LOAD {sql_literal(str(postgres_extension_path()))}")
            con.execute(
                f"ATTACH {sql_literal(resource.conninfo(spec.event_time_zone))} AS {ATTACHED} (TYPE postgres, READ_ONLY)"
            )
        except duckdb.Error as exc:
            failure = resource.mask(str(exc))
        if failure is not None:
            # Raised outside the except block: the unmasked original is not chained into the event log.
            raise PostgresSourceError(f"{spec.name}: cannot connect to PostgreSQL at {resource.location}: {failure}", failure)
        yield con
    finally:
        con.close()


def _query(resource: PostgresResource, spec: PostgresSourceSpec, action, what: str):
    failure = None
    try:
        return action()
    except duckdb.Error as exc:
        failure = resource.mask(str(exc))
    raise PostgresSourceError(f"{spec.name}: {what} {spec.table} at {resource.location} failed: {failure}", failure)


def _pg_literal(value) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _pg_table(spec: PostgresSourceSpec) -> str:
    return f"{quote(spec.schema_name)}.{quote(spec.table_name)}"


def _created_date_pg(spec: PostgresSourceSpec) -> str:
    return f"(({quote(spec.event_time_column)})::timestamptz AT TIME ZONE 'UTC')::date"


def _iso(value: dt.datetime | None) -> str | None:
    """UTC ISO text with microseconds, e.g. 2026-03-01T08:00:00.000000Z."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- extraction -------------------------------------------------------------------------------


def _json_text(column: str, record: str = "record") -> str:
    key = '$."' + column.replace('"', '\\"') + '"'
    return f"json_extract_string({record}, {sql_literal(key)})"


def _key_sql(spec: PostgresSourceSpec, record: str = "record") -> str:
    return "[" + ", ".join(_json_text(k, record) for k in spec.key_columns) + "]"


def _version_sql(spec: PostgresSourceSpec, record: str = "record") -> str:
    return _utc_timestamp(_json_text(spec.updated_at_column, record), spec.event_time_zone)


def _pull_sql(spec: PostgresSourceSpec, marks: list[tuple[dt.date, dt.datetime | None]]) -> str:
    """PostgreSQL query: rows created on each day, updated after that day's mark minus the overlap."""
    values = ", ".join(
        f"(DATE {_pg_literal(day)}, {('TIMESTAMPTZ ' + _pg_literal(_iso(mark))) if mark else 'NULL::timestamptz'})"
        for day, mark in marks
    )
    created, updated = quote(spec.event_time_column), quote(spec.updated_at_column)
    return f"""WITH marks(day, mark) AS (VALUES {values})
SELECT t.*, marks.day AS {_CREATED_DATE}
FROM {_pg_table(spec)} t
JOIN marks ON t.{created} >= (marks.day::timestamp AT TIME ZONE 'UTC')
  AND t.{created} < ((marks.day + 1)::timestamp AT TIME ZONE 'UTC')
WHERE marks.mark IS NULL OR t.{updated} > marks.mark - INTERVAL '{int(spec.overlap_minutes)} minutes'"""


def _text_sql(column: str, duckdb_type: str) -> str:
    col = quote(column)
    if duckdb_type.startswith("TIMESTAMP WITH TIME ZONE"):
        return f"(strftime(timezone('UTC', {col}), '%Y-%m-%dT%H:%M:%S.%f') || '+00:00')"
    return f"CAST({col} AS VARCHAR)"


def extract_window(
    con: duckdb.DuckDBPyConnection, pg: duckdb.DuckDBPyConnection, resource: PostgresResource,
    spec: PostgresSourceSpec, window: tuple[dt.date, dt.date], ingested_at: dt.datetime,
) -> list[dict]:
    """Append the window's new row versions to raw (in `con`'s transaction); one entry per day."""
    create_raw_tables(con, spec)
    raw = quote(spec.raw_table)
    marks = dict(con.execute(
        f"SELECT landing_date, max({_version_sql(spec)}) FROM {raw} WHERE landing_date BETWEEN ? AND ? GROUP BY 1",
        list(window),
    ).fetchall())
    days = [window[0] + dt.timedelta(days=i) for i in range((window[1] - window[0]).days + 1)]
    scan = f"postgres_query({sql_literal(ATTACHED)}, {sql_literal(_pull_sql(spec, [(d, marks.get(d)) for d in days]))})"

    described = _query(resource, spec, lambda: pg.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall(), "describing")
    types = {row[0]: row[1] for row in described if row[0] != _CREATED_DATE}
    columns = list(types)
    missing = [c for c in (*spec.key_columns, spec.event_time_column, spec.updated_at_column) if c not in types]
    if missing:
        raise PostgresSourceError(f"{spec.name}: {spec.table} has no column(s) {missing}")
    record = "to_json(struct_pack(" + ", ".join(f"{quote(c)} := {_text_sql(c, t)}" for c, t in types.items()) + "))"

    def pull():
        reader = pg.execute(
            f"SELECT {quote(_CREATED_DATE)}::DATE AS landing_date, CAST({record} AS VARCHAR) AS record FROM {scan}"
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

    _query(resource, spec, pull, "reading")
    # Versions raw already holds (re-runs, the overlap) are not appended again.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _pg_new AS
        SELECT * FROM _pg_pulled p
        WHERE NOT EXISTS (
          SELECT 1 FROM {raw} r
          WHERE r.landing_date = p.landing_date AND {_key_sql(spec, 'r.record')} = p._key
            AND {_version_sql(spec, 'r.record')} IS NOT DISTINCT FROM p._version)
        QUALIFY row_number() OVER (PARTITION BY landing_date, _key, _version ORDER BY record::VARCHAR) = 1"""
    )
    pulled = dict(con.execute("SELECT landing_date, count(*) FROM _pg_pulled GROUP BY 1").fetchall())
    new = dict(con.execute("SELECT landing_date, count(*) FROM _pg_new GROUP BY 1").fetchall())
    version = detect_schema_version(spec, columns)
    extractions = []
    for day in days:
        mark = _iso(marks.get(day))
        entry = {"day": day.isoformat(), "high_water_mark": mark, "pulled": pulled.get(day, 0),
                 "appended": new.get(day, 0)}
        if entry["appended"]:
            source_file = f"postgres:{spec.table}@{mark or 'initial'}"
            con.execute(
                f"""INSERT INTO {raw}
                SELECT landing_date, ?, row_number() OVER (ORDER BY _key, _version), ?::TIMESTAMP, ?, record
                FROM _pg_new WHERE landing_date = ?""",
                [source_file, ingested_at, version, day],
            )
            entry["ledger"] = record_batch(
                con, spec, landing_date=day, source_file=source_file, format="postgres",
                row_count=entry["appended"], columns=columns, schema_version=version, ingested_at=ingested_at,
            )
        extractions.append(entry)
    con.execute("DROP TABLE _pg_pulled")
    con.execute("DROP TABLE _pg_new")
    return extractions


def changed_days(
    pg: duckdb.DuckDBPyConnection, resource: PostgresResource, spec: PostgresSourceSpec, since: dt.datetime | None
) -> list[tuple[dt.date, dt.datetime]]:
    """(UTC creation day, newest updated_at) of rows changed after `since` minus the overlap."""
    updated = quote(spec.updated_at_column)
    where = ""
    if since is not None:
        where = f"WHERE t.{updated} > TIMESTAMPTZ {_pg_literal(_iso(since))} - INTERVAL '{int(spec.overlap_minutes)} minutes'"
    sql = f"""SELECT {_created_date_pg(spec)} AS created_date, max(t.{updated})::timestamptz AS max_updated_at
FROM {_pg_table(spec)} t {where}
GROUP BY 1 HAVING {_created_date_pg(spec)} IS NOT NULL ORDER BY 1"""
    rows = _query(
        resource, spec,
        lambda: pg.execute(f"SELECT * FROM postgres_query({sql_literal(ATTACHED)}, {sql_literal(sql)})").fetchall(),
        "polling",
    )
    return [(day, ts.astimezone(dt.timezone.utc).replace(tzinfo=None) if ts.tzinfo else ts) for day, ts in rows]


# --- Dagster definitions ----------------------------------------------------------------------


def postgres_resource(spec: PostgresSourceSpec) -> PostgresResource:
    env = spec.env_vars
    return PostgresResource(
        host=dg.EnvVar(env["host"]), port=dg.EnvVar.int(env["port"]), db=dg.EnvVar(env["db"]),
        user=dg.EnvVar(env["user"]), password=dg.EnvVar(env["password"]),
    )


def postgres_raw_asset(spec: PostgresSourceSpec) -> dg.AssetsDefinition:
    key = dg.AssetKey(spec.raw_table)
    partitions_def = daily_partitions()

    @dg.asset(
        name=spec.raw_table,
        group_name="raw",
        kinds={"duckdb", "postgres"},
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
        owners=[spec.owner],
        tags={"source": spec.name, **spec.tags},
        required_resource_keys={"warehouse", spec.resource_key},
        description=(
            f"{spec.description}\n\nRows of PostgreSQL table `{spec.table}`, one partition per UTC day of "
            f"`{spec.event_time_column}`, extracted incrementally by `{spec.updated_at_column}` "
            f"(overlap {spec.overlap_minutes} min): every new version is appended, values kept as text, with lineage."
        ),
        check_specs=[schema_check_spec(key, spec, partitions_def)],
    )
    def _raw(context: dg.AssetExecutionContext):
        warehouse = context.resources.warehouse
        source: PostgresResource = getattr(context.resources, spec.resource_key)
        window = run_window(context)
        ingested_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        with attached(source, spec) as pg, warehouse.transaction() as con:
            extractions = extract_window(con, pg, source, spec, window, ingested_at)
            schema = evaluate_schema(con, spec, window)
        appended = sum(e["appended"] for e in extractions)
        pulled = sum(e["pulled"] for e in extractions)
        context.log.info(
            f"{spec.raw_table} {window_label(window)}: {pulled} rows read from {spec.table}, {appended} new versions appended"
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": appended,
                "source_table": spec.table,
                "rows_pulled": pulled,
                "versions_appended": appended,
                "already_present": pulled - appended,
                "extractions": dg.MetadataValue.json([{k: v for k, v in e.items() if k != "ledger"} for e in extractions]),
                "schema_versions": ", ".join(sorted({e["ledger"]["schema_version"] for e in extractions if "ledger" in e}))
                or "none",
            },
            check_results=[schema],
        )

    return _raw


def change_sensor(spec: PostgresSourceSpec, raw: dg.AssetsDefinition, resource: PostgresResource) -> dg.SensorDefinition:
    """Requests the raw partition of each creation day whose rows changed, once per change.

    The cursor is the newest updated_at seen plus, per day, the newest updated_at already requested
    for days changed within the overlap (re-read every tick), so a day is requested again only when
    its newest updated_at moved. run_key = <source>:<day>:<newest updated_at>: deterministic.
    """
    partitions_def = raw.partitions_def

    @dg.sensor(
        name=f"{spec.name}_change_sensor",
        description=f"Requests {raw.key.to_user_string()} partitions when rows of {spec.table} change.",
        asset_selection=[raw.key],
        minimum_interval_seconds=settings.sensor_interval_seconds(),
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def _sensor(context: dg.SensorEvaluationContext):
        missing = [var for var in spec.env_vars.values() if not os.environ.get(var)]
        if missing:
            return dg.SkipReason(
                f"{spec.name}: PostgreSQL source not configured: environment variable(s) {', '.join(missing)} not set"
            )
        try:
            with dg.build_resources({"source": resource}) as resources:
                source: PostgresResource = resources.source
        except dg.DagsterInvalidConfigError:
            return dg.SkipReason(
                f"{spec.name}: PostgreSQL source misconfigured: {spec.env_vars['port']} must be an integer"
            )
        cursor = json.loads(context.cursor) if context.cursor else {"hwm": None, "edge": {}}
        since = dt.datetime.fromisoformat(cursor["hwm"].rstrip("Z")) if cursor["hwm"] else None
        try:
            with attached(source, spec) as pg:
                changes = changed_days(pg, source, spec, since)
        except PostgresSourceError as exc:
            return dg.SkipReason(
                f"{spec.name}: PostgreSQL server at {source.location} unreachable or refusing the connection: {exc.detail}"
            )
        if not changes:
            return dg.SkipReason(f"{spec.name}: no changes in {spec.table}")
        valid_keys = set(partitions_def.get_partition_keys(dynamic_partitions_store=context.instance))
        edge = dict(cursor["edge"])
        runs = []
        for day, newest in changes:
            partition, mark = day.isoformat(), _iso(newest)
            if edge.get(partition) == mark:
                continue
            if partition not in valid_keys:
                context.log.warning(f"{spec.name}: rows created on {partition} are outside the partitions; not requested")
                continue
            runs.append(dg.RunRequest(
                run_key=f"{spec.name}:{partition}:{mark}", partition_key=partition,
                tags={"ml_platform/source": spec.name},
            ))
        high = max([since, *(newest for _, newest in changes)], key=lambda t: t or dt.datetime.min)
        floor = high - dt.timedelta(minutes=spec.overlap_minutes)
        # Only days that the next tick re-reads (changed within the overlap) need remembering.
        edge = {p: m for p, m in {**edge, **{d.isoformat(): _iso(n) for d, n in changes}}.items()
                if dt.datetime.fromisoformat(m.rstrip("Z")) > floor}
        new_cursor = json.dumps({"hwm": _iso(high), "edge": dict(sorted(edge.items()))})
        if not runs:
            return dg.SensorResult(skip_reason=f"{spec.name}: no new changes in {spec.table}", cursor=new_cursor)
        return dg.SensorResult(run_requests=runs, cursor=new_cursor)

    return _sensor


@raw_builder(PostgresSourceSpec)
def postgres_source_definitions(spec: PostgresSourceSpec) -> SourceDefinitions:
    resource = postgres_resource(spec)
    raw = postgres_raw_asset(spec)
    return SourceDefinitions(
        assets=[raw], sensors=[change_sensor(spec, raw, resource)], resources={spec.resource_key: resource}
    )
