"""A DuckDB connection that reads and writes `s3://` URLs: the httpfs extension, loaded offline
from the pinned `duckdb-extension-httpfs` wheel, and a temporary S3 secret for the connection.

The keys go into `CREATE SECRET` as bound parameters, so they are in no SQL text (which DuckDB
errors and the platform's logs may quote); `duckdb_secrets()` shows them redacted.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import duckdb

from ml_platform.storage.aws import AwsAccess
from ml_platform.warehouse.extensions import load_offline, shipped_extension

SECRET_NAME = "ml_platform_lake"


def attach_s3(con: duckdb.DuckDBPyConnection, access: AwsAccess) -> None:
    """Load httpfs and give the connection the access's credentials for every `s3://` URL."""
    load_offline(con, shipped_extension("duckdb_extension_httpfs", "httpfs"))
    keys = access.credentials()
    options = {"KEY_ID": keys.key_id, "SECRET": keys.secret}
    if keys.session_token:
        options["SESSION_TOKEN"] = keys.session_token
    if access.region:
        options["REGION"] = access.region
    if access.endpoint_url:
        # An S3-compatible server (MinIO, the tests' local one): host:port, path-style URLs.
        endpoint = urlsplit(access.endpoint_url)
        options["ENDPOINT"] = endpoint.netloc
        options["URL_STYLE"] = "path"
        options["USE_SSL"] = endpoint.scheme == "https"
    names = ", ".join(f"{name} ?" for name in options)
    con.execute(f"CREATE OR REPLACE TEMPORARY SECRET {SECRET_NAME} (TYPE s3, {names})", list(options.values()))
