"""Schema policies: which column sets a source accepts, decided in one place.

Raw ingestion never rejects a batch for its columns (nothing is lost). The policy decides, per
batch, whether its columns are the current version, an accepted change, or rejected; the raw
`schema` check reports it and the clean layer quarantines every row of a rejected batch.
"""

from __future__ import annotations

from typing import Literal

import duckdb

from ml_platform.raw.spec import SourceSpec
from ml_platform.raw.table import LEDGER_TABLE, UNREADABLE, ledger_scope
from ml_platform.warehouse import sql
from ml_platform.warehouse.sql import DateWindow

SchemaVerdict = Literal["current", "accepted", "rejected"]

# The quarantine rule of rows in a batch the policy rejects.
REJECTION_RULES = {
    "strict": "_schema:strict(columns differ from the current version)",
    "add_only": "_schema:add_only(columns removed)",
}


def schema_verdict(spec: SourceSpec, columns: list[str]) -> SchemaVerdict:
    """'current', 'accepted' (a change the policy allows) or 'rejected'."""
    current = list(spec.current_columns or spec.source_columns)
    if sorted(set(columns)) == sorted(current):
        return "current"
    if spec.schema_policy == "strict":
        return "rejected"
    if spec.schema_policy == "add_only":
        present = all(any(name in columns for name in spec.equivalent_names(c)) for c in current)
        return "accepted" if present else "rejected"
    return "accepted"


def ledger_batches(con: duckdb.DuckDBPyConnection, spec: SourceSpec, window: DateWindow | None) -> list[tuple]:
    """(source_file, landing_date, columns, schema_version) of the source's batches in a landing
    window that were read and had columns (an unreadable or empty file has none to judge; the
    `files` check reports it)."""
    return con.execute(
        f"SELECT source_file, landing_date, columns, schema_version FROM {sql.ident(LEDGER_TABLE)}"
        f" WHERE {ledger_scope(spec, window)} AND status IS DISTINCT FROM {sql.literal(UNREADABLE)}"
        " AND len(columns) > 0"
        " ORDER BY source_file, landing_date"
    ).fetchall()


def rejected_batches(con: duckdb.DuckDBPyConnection, spec: SourceSpec, window: DateWindow | None) -> list[str]:
    """Batches (as `source_file@landing_date`) whose columns the policy rejects."""
    return sorted(
        f"{source_file}@{landing_date}"
        for source_file, landing_date, columns, _ in ledger_batches(con, spec, window)
        if schema_verdict(spec, columns) == "rejected"
    )
