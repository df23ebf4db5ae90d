"""DuckDB extensions loaded offline from their pinned PyPI wheels (`duckdb-extension-<name>`).

DuckDB downloads extensions from its own server on first use, which no air-gapped machine (and
none here) can reach. The wheels ship the binary for exactly one DuckDB version; `LOAD '<path>'`
takes it from disk, with automatic install and load turned off so nothing is ever fetched.
"""

from __future__ import annotations

import functools
import importlib
import os
import tempfile
from pathlib import Path

import duckdb

from ml_platform.warehouse import sql


class MissingExtension(RuntimeError):
    """The wheel of an extension is not installed, or is for another DuckDB version."""


def shipped_extension(wheel_module: str, shipped_name: str, load_name: str | None = None) -> Path:
    """The extension file from the wheel's package `wheel_module`, for this DuckDB version.

    DuckDB derives an extension's entry point from its file name: when the wheel ships it under
    another name than DuckDB expects (`postgres` for `postgres_scanner`), a symlink named
    `load_name` in a per-user temp folder stands in for it.
    """
    version = f"v{duckdb.__version__}"
    try:
        package = importlib.import_module(wheel_module)
    except ImportError:
        package = None
    shipped = (
        Path(package.__file__).parent / "extensions" / version / f"{shipped_name}.duckdb_extension" if package else None
    )
    if shipped is None or not shipped.exists():
        wheel = wheel_module.replace("_", "-")
        raise MissingExtension(
            f"the DuckDB {shipped_name} extension for DuckDB {version} is missing: install {wheel}=={duckdb.__version__}"
        )
    if load_name is None or load_name == shipped_name:
        return shipped
    link = Path(tempfile.gettempdir()) / f"ml_platform-duckdb-extensions-{os.getuid()}" / version
    link = link / f"{load_name}.duckdb_extension"
    _link(link, shipped)
    return link


def load_offline(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """LOAD the extension file at `path`, with DuckDB's own downloads turned off. (Autoloading stays
    as the connection has it: it loads only what is in the extension directory, never downloads.)"""
    con.execute("SET autoinstall_known_extensions = false")
    con.execute(f"LOAD {sql.literal(str(path))}")


# Loaded by DuckDB itself the first time a query needs them (`autoloaded_config`): iceberg_scan, and
# the avro reader it reads manifests with.
AUTOLOADED = {"iceberg": "duckdb_extension_iceberg", "avro": "duckdb_extension_avro"}


@functools.cache
def autoloaded_config() -> dict:
    """Connection settings under which DuckDB loads `AUTOLOADED` the first time a query needs one
    (a view over `iceberg_scan`), from a per-user folder of links to the pinned wheels' files, and
    never installs anything. Loading them costs about 0.1 s; a connection that reads no lake table
    does not pay it. Made once per process (a copy, so no caller changes it)."""
    version = f"v{duckdb.__version__}"
    root = Path(tempfile.gettempdir()) / f"ml_platform-duckdb-autoload-{os.getuid()}"
    folder = root / version / _platform()
    for name, wheel_module in AUTOLOADED.items():
        _link(folder / f"{name}.duckdb_extension", shipped_extension(wheel_module, name))
    return {"extension_directory": str(root), "autoinstall_known_extensions": False, "autoload_known_extensions": True}


def _platform() -> str:
    con = duckdb.connect()
    try:
        return con.execute("PRAGMA platform").fetchone()[0]
    finally:
        con.close()


def _link(link: Path, target: Path) -> None:
    """`link` -> `target`, made atomically (several processes may make it at once)."""
    if link.is_symlink() and link.resolve() == target.resolve():
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    staging = link.with_name(f".link-{os.getpid()}-{link.name}")
    staging.unlink(missing_ok=True)
    staging.symlink_to(target)
    os.replace(staging, link)


def load_iceberg(con: duckdb.DuckDBPyConnection) -> None:
    """Give `con` `iceberg_scan` (ml_platform.lakehouse): the iceberg extension, and avro's, which it
    reads manifests with. Files on S3 need `ml_platform.warehouse.s3.attach_s3` as well."""
    load_offline(con, shipped_extension("duckdb_extension_avro", "avro"))
    load_offline(con, shipped_extension("duckdb_extension_iceberg", "iceberg"))
