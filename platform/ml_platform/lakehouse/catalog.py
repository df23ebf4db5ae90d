"""The Iceberg catalog the platform's lake tables are registered in, and where their files live.

The catalog is pyiceberg's SQL catalog: one row per table pointing at its current metadata file,
swapped by a conditional UPDATE on commit. Its database is `ML_PLATFORM_CATALOG_URL` (a SQLAlchemy
URL, e.g. `postgresql+psycopg2://user:password@host:5432/db`, so it holds a secret: it comes from
the deployment's secret store and is never logged). Unset, the embedded default: a SQLite file,
`<data>/lake/catalog.db`, which any process of this machine can commit to.

Table files go under `<prefix>/lake/<table>/` on S3 when `ML_PLATFORM_STORAGE` is an S3 prefix
(credentials as for every S3 access, `ml_platform.storage.aws`), else under `<data>/lake/<table>/`.
"""

from __future__ import annotations

import time

from pyiceberg.catalog.sql import SqlCatalog
from sqlalchemy.exc import IntegrityError, OperationalError

from ml_platform import settings
from ml_platform.storage.location import s3_location

NAMESPACE = "ml_platform"
# SQLite waits this long for another process's write to the catalog instead of failing at once.
SQLITE_BUSY_SECONDS = 60
_CATALOGS: dict[tuple, SqlCatalog] = {}


def catalog_url() -> str:
    """The catalog's database: `ML_PLATFORM_CATALOG_URL`, or the local SQLite file."""
    url = settings.catalog_url()
    if url:
        return url
    path = settings.data_dir() / "lake" / "catalog.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}?timeout={SQLITE_BUSY_SECONDS}"


def lake_root() -> str:
    """Where table files go: `s3://bucket/prefix/lake`, or the local `<data>/lake` folder."""
    location = s3_location()
    if location:
        return location.url("lake")
    return str(settings.data_dir() / "lake")


def table_location(name: str) -> str:
    return f"{lake_root()}/{name}"


def identifier(name: str) -> str:
    return f"{NAMESPACE}.{name}"


def catalog() -> SqlCatalog:
    """The catalog, one per process and configuration (opening one costs a database round trip)."""
    properties = file_io_properties()
    key = (catalog_url(), lake_root(), tuple(sorted(properties.items())))
    found = _CATALOGS.get(key)
    if found is None:
        found = _CATALOGS[key] = _open(key[0], properties)
    return found


def _open(url: str, properties: dict[str, str]) -> SqlCatalog:
    # Two processes opening a brand-new catalog both create its tables: the loser's CREATE fails
    # (or, on SQLite, its database is locked). The tables exist once the winner is done.
    for attempt in range(5):
        try:
            opened = SqlCatalog(NAMESPACE, uri=url, warehouse=lake_root(), **properties)
            opened.create_namespace_if_not_exists(NAMESPACE)
            return opened
        except (OperationalError, IntegrityError):
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def file_io_properties() -> dict[str, str]:
    """pyiceberg's FileIO settings: the S3 endpoint, region and credentials when files are on S3."""
    if s3_location() is None:
        return {}
    from ml_platform.storage.aws import aws_access  # boto3 only when S3 is configured

    access = aws_access()
    keys = access.credentials()
    properties = {
        "py-io-impl": "pyiceberg.io.pyarrow.PyArrowFileIO",
        "s3.access-key-id": keys.key_id,
        "s3.secret-access-key": keys.secret,
    }
    if keys.session_token:
        properties["s3.session-token"] = keys.session_token
    if access.region:
        properties["s3.region"] = access.region
    if access.endpoint_url:
        properties["s3.endpoint"] = access.endpoint_url
    return properties
