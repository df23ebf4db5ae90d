"""pyiceberg's private parts stay behind one fence (ml_platform.lakehouse.iceberg_private), and the
installed pyiceberg still has what the fence relies on. Run this file first after bumping pyiceberg:
a failure names what changed. (What the fence does, a commit of several tables in one catalog
transaction, is test_lakehouse.py's: killed at every point, and redone after a lost race.)"""

from __future__ import annotations

import inspect
import re
from importlib.metadata import version
from pathlib import Path

import pyiceberg.catalog.sql
import pyiceberg.table

from ml_platform.lakehouse import iceberg_private

PACKAGE = Path(__file__).resolve().parents[1] / "platform" / "ml_platform"
PRIVATE_NAMES = ("_update_and_stage_table", "_write_metadata", "_do_commit", "IcebergTables")


def test_the_installed_pyiceberg_is_the_one_the_fence_was_checked_against():
    assert version("pyiceberg") == iceberg_private.CHECKED_VERSION


def test_the_private_parts_the_fence_uses_are_there_as_it_uses_them():
    stage = inspect.signature(pyiceberg.catalog.sql.SqlCatalog._update_and_stage_table)
    assert list(stage.parameters) == ["self", "current_table", "table_identifier", "requirements", "updates"]
    write = inspect.signature(pyiceberg.catalog.sql.SqlCatalog._write_metadata)
    assert list(write.parameters) == ["metadata", "io", "metadata_path"]
    assert list(inspect.signature(pyiceberg.table.Table._do_commit).parameters) == ["self", "updates", "requirements"]
    # commit_transaction hands a transaction's changes to _do_commit, which is what `prepare` takes.
    assert "self._table._do_commit(" in inspect.getsource(pyiceberg.table.Transaction.commit_transaction)
    columns = set(pyiceberg.catalog.sql.IcebergTables.__table__.columns.keys())
    assert {
        "catalog_name",
        "table_namespace",
        "table_name",
        "metadata_location",
        "previous_metadata_location",
    } <= columns
    # The catalog's own commit moves a table's pointer the way commit_together does.
    assert "IcebergTables.metadata_location == current_table.metadata_location" in inspect.getsource(
        pyiceberg.catalog.sql.SqlCatalog.commit_table
    )


def test_no_other_module_uses_pyiceberg_private_parts():
    fence = PACKAGE / "lakehouse" / "iceberg_private.py"
    found = [
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in PACKAGE.rglob("*.py")
        if path != fence
        for name in PRIVATE_NAMES
        if re.search(rf"\b{name}\b", path.read_text())
    ]
    assert found == []
