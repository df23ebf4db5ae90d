"""Where the platform keeps its data, read once from the environment.

Every path has a default under the repository's `data/` folder so `make dev` needs no
configuration; tests and deployments point the same variables somewhere else.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """Root of landing files and the embedded warehouse (`ML_PLATFORM_DATA_DIR`)."""
    return Path(os.environ.get("ML_PLATFORM_DATA_DIR", REPO_ROOT / "data")).resolve()


def landing_dir() -> Path:
    """Folder where sources drop files, one sub-folder per source."""
    return data_dir() / "landing"


def warehouse_path() -> Path:
    """The DuckDB warehouse file (`ML_PLATFORM_WAREHOUSE`, default `<data>/warehouse.duckdb`)."""
    return Path(os.environ.get("ML_PLATFORM_WAREHOUSE", data_dir() / "warehouse.duckdb")).resolve()


def partitions_start_date() -> str:
    """First daily partition of every time-partitioned asset (`ML_PLATFORM_START_DATE`)."""
    return os.environ.get("ML_PLATFORM_START_DATE", "2026-01-01")


def sensor_interval_seconds() -> int:
    """The shortest time between two ticks of a landing sensor or of the automation sensor
    (`ML_PLATFORM_SENSOR_INTERVAL`).

    Dagster's sensor and automation daemons look at their sensors once per 5 s loop, and a sensor
    whose last tick is younger than this interval waits for the next loop. With 5 s, a tick that
    started a little less than 5 s ago was skipped: sensors ticked every 10 s (measured: ticks 8.7-10.3 s
    apart). The default, 3 s, lets every loop tick, so the daemons' 5 s is the real interval. A landed file
    waits for two ticks (landing sensor, then automation), 2.5 s each on average. The price: an
    automation tick takes 0.2-0.4 s of the daemon's CPU when idle, 1.3-5.3 s while it requests runs
    (most of it logging the runs' planned materializations), on 2 cores (benchmarks/dev_bench.py)."""
    return int(os.environ.get("ML_PLATFORM_SENSOR_INTERVAL", "3"))


def retry_backoff_seconds() -> float:
    """How long automation waits before it requests again a partition whose run died or failed for
    a reason that is not its data (`ML_PLATFORM_RETRY_BACKOFF`, default 15 s): after the n-th failed
    attempt in a row it waits this times 2^(n-1), at most 30 minutes (`ml_platform.automation`).
    Dagster's own run retry comes first, at once; this is for what is left after it."""
    return float(os.environ.get("ML_PLATFORM_RETRY_BACKOFF", "15"))


def audit_cron() -> str:
    """When the consistency audit runs inside the platform (`ML_PLATFORM_AUDIT_CRON`, a cron
    expression in UTC; default 04:30 every day): each curated table's `audit` check recomputes its
    latest partitions from their inputs and compares (`ml_platform.curated.audit`)."""
    return os.environ.get("ML_PLATFORM_AUDIT_CRON", "30 4 * * *")


def duckdb_memory_limit() -> str:
    """How much memory one DuckDB connection may hold before it spills to disk
    (`ML_PLATFORM_DUCKDB_MEMORY_LIMIT`, any DuckDB size such as `384MB` or `4GB`).

    The default, 384MB, keeps a step's process under 1 GiB whatever the size of its window (one
    10 M-row day: raw 0.95 GiB, clean with its contract check 0.71 GiB). The clean write then spills
    its staging tables to `<warehouse>.tmp/` and takes about 20% longer than with DuckDB's own default
    (80% of RAM: 6 GB for that write). Raise it on machines with memory to spare for large backfills."""
    return os.environ.get("ML_PLATFORM_DUCKDB_MEMORY_LIMIT", "384MB")


def quality_reports_dir() -> Path:
    """Where each run's quality report goes: `<data>/reports/quality/<run_id>.json`."""
    return data_dir() / "reports" / "quality"


def alert_webhook_url() -> str | None:
    """Where alerts are POSTed as JSON (`ML_PLATFORM_ALERT_WEBHOOK_URL`); unset, alerts are only
    logged. The URL may hold a token, so it is never logged or put in an alert."""
    return os.environ.get("ML_PLATFORM_ALERT_WEBHOOK_URL") or None


def ui_url() -> str:
    """The Dagster UI's address, for the run links in alerts (`ML_PLATFORM_UI_URL`, default
    `make dev`'s `http://127.0.0.1:3000`)."""
    return os.environ.get("ML_PLATFORM_UI_URL", "http://127.0.0.1:3000").rstrip("/")


def metrics_port() -> int:
    """The port the Prometheus metrics server listens on, on 127.0.0.1 (`ML_PLATFORM_METRICS_PORT`)."""
    return int(os.environ.get("ML_PLATFORM_METRICS_PORT", "9108"))


def pseudonym_key() -> str | None:
    """The secret key of the keyed hash that pseudonymizes personal columns on the way to curated
    tables (`ML_PLATFORM_PSEUDONYM_KEY`); None when unset. `ml_platform.privacy` refuses to write a
    curated table with personal columns without it. Never logged, never stored."""
    return os.environ.get("ML_PLATFORM_PSEUDONYM_KEY") or None


def monitoring_interval_seconds() -> int:
    """The shortest time between two ticks of the quality-report and alert sensors
    (`ML_PLATFORM_MONITORING_INTERVAL`, default 15): a report or alert comes at most that long after
    its run ended, and an idle tick costs little (three small indexed queries)."""
    return int(os.environ.get("ML_PLATFORM_MONITORING_INTERVAL", "15"))


def storage_url() -> str | None:
    """Where landed files come from and curated tables are exported to (`ML_PLATFORM_STORAGE`):
    unset, the local landing folder (the embedded default); `s3://bucket/prefix`, that S3 prefix
    (`ml_platform.storage`). The DuckDB warehouse file stays local either way."""
    return os.environ.get("ML_PLATFORM_STORAGE") or None


def s3_endpoint_url() -> str | None:
    """An S3-compatible server instead of AWS (`ML_PLATFORM_S3_ENDPOINT_URL`, e.g. MinIO or the
    tests' local server): `http://host:port`. Unset: AWS's own endpoint for the region."""
    return os.environ.get("ML_PLATFORM_S3_ENDPOINT_URL") or None


def s3_region() -> str | None:
    """The bucket's AWS region: `AWS_REGION`, else `AWS_DEFAULT_REGION` (boto3's own variables)."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


def s3_credentials_secret() -> str | None:
    """The AWS Secrets Manager secret (name or ARN) holding the S3 credentials as JSON
    (`aws_access_key_id`, `aws_secret_access_key`, optionally `aws_session_token`), read through
    dagster-aws (`ML_PLATFORM_S3_CREDENTIALS_SECRET`). Unset: boto3's own chain (environment,
    `AWS_PROFILE`, instance or task role). Only the secret's name is configuration."""
    return os.environ.get("ML_PLATFORM_S3_CREDENTIALS_SECRET") or None


def s3_listing_overlap_seconds() -> int:
    """How far before the newest LastModified an S3 landing sensor tick looks again
    (`ML_PLATFORM_S3_LISTING_OVERLAP`, default 900). S3 gives LastModified to the second, and a
    multipart upload's LastModified is when the upload *started*: an object can appear in a listing
    with a time older than objects seen before it. Objects in the overlap are told apart by key and
    ETag, so none is requested twice. Set it above your longest upload."""
    return int(os.environ.get("ML_PLATFORM_S3_LISTING_OVERLAP", "900"))


def kafka_lib_dir() -> Path:
    """The Kafka broker's jars for development and tests (`ML_PLATFORM_KAFKA_LIB`, default
    `.kafka/lib` in the repository, filled by `make kafka`; `ml_platform.demo.kafka_broker`)."""
    return Path(os.environ.get("ML_PLATFORM_KAFKA_LIB", REPO_ROOT / ".kafka" / "lib")).resolve()


def parallel_raw() -> bool:
    """Raw runs take no warehouse pool slot and a backfill is one run per day, so runs of different
    days work in parallel (`ML_PLATFORM_PARALLEL_RAW`, default off; only with lake tables, where a
    raw run works in a database of its own: `ml_platform.raw.lake_run`, docs/scaling.md)."""
    wanted = os.environ.get("ML_PLATFORM_PARALLEL_RAW", "").lower() in ("1", "true", "yes")
    if wanted and not lake_tables():
        raise ValueError(
            "ML_PLATFORM_PARALLEL_RAW=true needs lake tables (raw runs of different days commit to the lake):"
            " unset ML_PLATFORM_LAKE_TABLES=false, or ML_PLATFORM_PARALLEL_RAW"
        )
    return wanted


def lake_tables() -> bool:
    """Raw, clean and curated tables (every partitioned table written through the contract writer or
    a raw run) and the raw layer's bookkeeping tables are Apache Iceberg tables, the warehouse
    holding a view of each (`ML_PLATFORM_LAKE_TABLES`, default
    on; `false` keeps them DuckDB tables in the warehouse file; `ml_platform.lakehouse.staged`,
    `ml_platform.raw.lake_run`, docs/scaling.md). A warehouse table from before is adopted by its first lake write."""
    return os.environ.get("ML_PLATFORM_LAKE_TABLES", "true").lower() not in ("0", "false", "no", "off")


def catalog_url() -> str | None:
    """The lake tables' Iceberg catalog database (`ML_PLATFORM_CATALOG_URL`, a SQLAlchemy URL such as
    `postgresql+psycopg2://user:password@host:5432/db`; it holds a password, so it comes from the
    deployment's secret store and is never logged). Unset: a SQLite file under the data folder
    (`ml_platform.lakehouse.catalog`)."""
    return os.environ.get("ML_PLATFORM_CATALOG_URL") or None


def lake_retention_hours() -> float:
    """How long the lake tables keep a snapshot that is no longer current, and a file no snapshot
    names, before the `lake_housekeeping` asset removes them (`ML_PLATFORM_LAKE_RETENTION_HOURS`,
    default 168: a week; `ml_platform.lakehouse.housekeeping`). Keep it above your longest run: a
    running write's files are named by no snapshot until it commits. Tagged snapshots (those a
    training set read) are kept whatever their age."""
    return float(os.environ.get("ML_PLATFORM_LAKE_RETENTION_HOURS", "168"))


def lake_max_snapshots() -> int:
    """How many snapshots a lake table keeps at most besides tagged ones (`ML_PLATFORM_LAKE_MAX_SNAPSHOTS`,
    default 100), whatever the retention: a commit's cost grows with the snapshots a table keeps,
    and a stream commits every few seconds. A writer that takes a table a quarter above it expires
    its oldest; `lake_housekeeping` does too."""
    return int(os.environ.get("ML_PLATFORM_LAKE_MAX_SNAPSHOTS", "100"))


def lake_compact_files() -> int:
    """How many data files a partition of a lake table holds before `lake_housekeeping` rewrites
    them as one (`ML_PLATFORM_LAKE_COMPACT_FILES`, default 8; `ml_platform.lakehouse.compaction`).
    Tables written by streams get a file per micro-batch and day."""
    return int(os.environ.get("ML_PLATFORM_LAKE_COMPACT_FILES", "8"))


def lake_housekeeping_cron() -> str:
    """When `lake_housekeeping` runs (`ML_PLATFORM_LAKE_HOUSEKEEPING_CRON`, a cron expression in UTC;
    default 04:45 every day)."""
    return os.environ.get("ML_PLATFORM_LAKE_HOUSEKEEPING_CRON", "45 4 * * *")


def api_catch_up() -> bool:
    """Whether API sources catch up on the days their daily schedule missed (`ML_PLATFORM_API_CATCH_UP`,
    default true): each source's `<name>_catch_up_sensor` then runs by default, like its schedule, and
    fetches every complete day since the first partition that is still missing
    (`ml_platform.ingestion.api.catch_up`). `false` leaves missed days to the operator."""
    return os.environ.get("ML_PLATFORM_API_CATCH_UP", "true").strip().lower() not in ("0", "false", "no", "off")


def redis_url() -> str | None:
    """The online store's Redis (`ML_PLATFORM_REDIS_URL`, e.g. `redis://127.0.0.1:6379/0`; a password
    goes in the URL, `redis://:secret@host:6379/0`, from the deployment's secret store, and is never
    logged). Unset: the embedded default, online lookups read the warehouse's feature views
    (`ml_platform.online_store`, docs/streaming.md#the-online-store)."""
    return os.environ.get("ML_PLATFORM_REDIS_URL") or None


def serve_port() -> int:
    """The port of the online features' HTTP endpoint, on 127.0.0.1 (`ML_PLATFORM_SERVE_PORT`, default
    8766; `python -m ml_platform serve`)."""
    return int(os.environ.get("ML_PLATFORM_SERVE_PORT", "8766"))
