"""How many values of a landed file are null markers: texts the source declares as "no value".

Raw keeps every value as landed, `NA` included; the clean layer reads a column's markers as NULL
(`SourceSpec.null_markers`). So that no value becomes NULL unrecorded, each file's ledger row
counts, per column and marker, the values that will (`ingest_ledger.null_markers`), and the raw
run's metadata sums them (`values_read_as_null`). An empty value is no value in any format and
is not counted. A source that declares no markers (the default) pays nothing: no query runs.
"""

from __future__ import annotations

import duckdb

from ml_platform.ingestion.files.scan import RECORDS
from ml_platform.raw.spec import SourceSpec
from ml_platform.warehouse import sql


def null_marker_counts(
    scratch: duckdb.DuckDBPyConnection, spec: SourceSpec, columns: list[str]
) -> dict[str, dict[str, int]]:
    """column -> marker -> values of the file's RECORDS that are that marker (non-zero only).
    A column is read under its contract name or an alias, as the clean layer reads it."""
    terms = []
    for column in spec.source_columns:
        names = [name for name in spec.names_for(column) if name in columns]
        markers = [marker for marker in spec.null_markers(column) if marker != ""]
        if not names or not markers:
            continue
        texts = [sql.json_text("record", name) for name in names]
        text = texts[0] if len(texts) == 1 else f"COALESCE({', '.join(texts)})"
        terms += [(column, marker, f"count_if({text} = {sql.literal(marker)})") for marker in markers]
    if not terms:
        return {}
    counts = scratch.execute(f"SELECT {', '.join(term for _, _, term in terms)} FROM {RECORDS}").fetchone()
    found: dict[str, dict[str, int]] = {}
    for (column, marker, _), count in zip(terms, counts, strict=True):
        if count:
            found.setdefault(column, {})[marker] = int(count)
    return found


def add_counts(total: dict[str, dict[str, int]], more: dict[str, dict[str, int]]) -> None:
    """Add one file's counts to a run's (in place)."""
    for column, markers in more.items():
        for marker, count in markers.items():
            total.setdefault(column, {})[marker] = total.get(column, {}).get(marker, 0) + count
