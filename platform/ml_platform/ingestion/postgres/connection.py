"""The read-only connection to a PostgreSQL source, with every error text masked.

An in-memory DuckDB loads the postgres extension from the `duckdb-extension-postgres` wheel
(offline, never INSTALL) and ATTACHes the source READ_ONLY. Credentials reach the code only
through `PostgresResource`, whose fields are Dagster `EnvVar`s; they never appear in code, logs,
metadata or error text (the DuckDB/libpq errors, which quote the connection string, are masked
before they are raised).
"""

import re
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from ml_platform.ingestion.postgres.spec import PostgresSourceSpec
from ml_platform.warehouse import sql
from ml_platform.warehouse.extensions import MissingExtension, load_offline, shipped_extension
from ml_platform.warehouse.resource import scratch_connection

# The alias of the ATTACHed source inside DuckDB.
ATTACHED = "pg_source"


class PostgresSourceError(RuntimeError):
    """The source could not be read. The message never holds the password."""

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        # The driver's (masked) reason, first line: for short messages such as a sensor's skip reason.
        self.detail = detail.strip().splitlines()[0] if detail.strip() else message


def postgres_extension_path() -> Path:
    """The extension shipped by the duckdb-extension-postgres wheel, under the file name DuckDB
    expects (`postgres_scanner`; the wheel ships it as `postgres`)."""
    try:
        return shipped_extension("duckdb_extension_postgres", "postgres", load_name="postgres_scanner")
    except MissingExtension as exc:
        raise PostgresSourceError(str(exc)) from exc


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
            "host": self.host,
            "port": self.port,
            "dbname": self.db,
            "user": self.user,
            "password": self.password,
            "connect_timeout": self.connect_timeout_seconds,
            "application_name": "ml_platform",
            "options": f"-c TimeZone={timezone} -c default_transaction_read_only=on",
        }
        return " ".join(f"{k}={_libpq_value(v)}" for k, v in settings_.items())

    def mask(self, text: str) -> str:
        """Error text safe to log: the connection string and the password are removed."""
        if self.password:
            for form in sorted(
                {_libpq_value(self.password), self.password.replace("'", "''"), self.password}, key=len, reverse=True
            ):
                text = text.replace(form, "***")
        # DuckDB quotes the whole connection string: 'IO Error: Unable to connect to Postgres at "host=...": ...'
        text = re.sub(r'(IO Error: )?Unable to connect to Postgres at "[^"]*":\s*', "", text)
        text = re.sub(r'"[^"]*password=[^"]*"', f'"{self.location}"', text)
        return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", text, flags=re.IGNORECASE)


def postgres_resource(spec: PostgresSourceSpec) -> PostgresResource:
    """The source's resource, built from the names of its environment variables (never their values)."""
    env = spec.env_vars
    return PostgresResource(
        host=dg.EnvVar(env["host"]),
        port=dg.EnvVar.int(env["port"]),
        db=dg.EnvVar(env["db"]),
        user=dg.EnvVar(env["user"]),
        password=dg.EnvVar(env["password"]),
    )


@contextmanager
def attached(resource: PostgresResource, spec: PostgresSourceSpec):
    """An in-memory DuckDB with the source ATTACHed READ_ONLY as `pg_source`."""
    con = scratch_connection()
    try:
        failure = None
        try:
            con.execute("SET TimeZone = 'UTC'")
            load_offline(con, postgres_extension_path())
            con.execute(
                f"ATTACH {sql.literal(resource.conninfo(spec.event_time_zone))} AS {ATTACHED} (TYPE postgres, READ_ONLY)"
            )
        except duckdb.Error as exc:
            failure = resource.mask(str(exc))
        if failure is not None:
            # Raised outside the except block: the unmasked original is not chained into the event log.
            raise PostgresSourceError(
                f"{spec.name}: cannot connect to PostgreSQL at {resource.location}: {failure}", failure
            )
        yield con
    finally:
        con.close()


def masked_query(resource: PostgresResource, spec: PostgresSourceSpec, action, what: str):
    """Run `action` (a query against the source); a driver error becomes a masked PostgresSourceError."""
    failure = None
    try:
        return action()
    except duckdb.Error as exc:
        failure = resource.mask(str(exc))
    # Raised outside the except block, for the same reason as in `attached`.
    raise PostgresSourceError(f"{spec.name}: {what} {spec.table} at {resource.location} failed: {failure}", failure)
