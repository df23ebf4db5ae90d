"""What kind of values each batch carried per column: the raw layer's record of types.

Raw keeps every value as text (nothing is lost to a type error), so a column's type is read from
its values: `number` when nine in ten of them read as a number, else `boolean`, else `timestamp`
(dates included), else `text`. One kind per column and batch is stored in the ledger (`column_types`)
when the batch is written, from at most its first `SAMPLED_ROWS` rows, so it costs the same for
any batch size. Integers and decimals are one kind on purpose: a day whose amounts all happen to
be whole is not a type change.

The raw `schema` check compares each batch's kinds with the column's usual kind in the source's
batches of the previous `HISTORY_DAYS` landing days (a change: WARN) and with what the contract's
type can read (values it cannot: ERROR, they will be quarantined).
"""

from __future__ import annotations

import collections
import datetime as dt

import duckdb

from ml_platform.contracts import table_contract as tc
from ml_platform.raw.spec import SourceSpec
from ml_platform.raw.table import LEDGER_TABLE, ledger_scope
from ml_platform.warehouse import sql
from ml_platform.warehouse.sql import DateWindow

SAMPLED_ROWS = 10_000
# A batch's column is of a kind when this share of its values reads as it: a few broken values
# (quarantined by the clean layer, row by row) do not turn a column of numbers into text.
KIND_SHARE = 0.9
HISTORY_DAYS = 28
# The kinds of values each contract type reads (text reads anything); DuckDB casts 0/1 to booleans.
READABLE_KINDS = {
    "DOUBLE": {"number"},
    "BIGINT": {"number"},
    "INTEGER": {"number"},
    "BOOLEAN": {"boolean", "number"},
    "DATE": {"timestamp"},
    "TIMESTAMP": {"timestamp"},
}


def _kind_sql(text: str) -> str:
    """The kind of a column's non-null values (an aggregate): NULL when it had none."""

    def mostly(cast: str) -> str:
        readable = f"count(TRY_CAST({text} AS {cast}))"
        return f"{readable} >= {sql.literal(KIND_SHARE)} * count({text})"

    return f"""CASE WHEN count({text}) = 0 THEN NULL
      WHEN {mostly("DOUBLE")} THEN 'number' WHEN {mostly("BOOLEAN")} THEN 'boolean'
      WHEN {mostly("TIMESTAMPTZ")} THEN 'timestamp' ELSE 'text' END"""


def _text_sql(spec: SourceSpec, column: str) -> str:
    """The column's text under any of its names; empty text and null markers count as missing."""
    names = [sql.json_text("r.record", name) for name in spec.names_for(column)]
    text = names[0] if len(names) == 1 else f"COALESCE({', '.join(names)})"
    markers = ", ".join(sql.literal(v) for v in ("", *spec.null_markers(column)))
    return f"(CASE WHEN {text} IN ({markers}) THEN NULL ELSE {text} END)"


def record_value_kinds(con: duckdb.DuckDBPyConnection, spec: SourceSpec, window: DateWindow) -> None:
    """Store the kinds of the window's batches that have none yet (call in the raw write's transaction)."""
    entries = ", ".join(
        f"struct_pack(k := {sql.literal(c)}, v := {_kind_sql(_text_sql(spec, c))})" for c in spec.source_columns
    )
    con.execute(
        f"""
        UPDATE {sql.ident(LEDGER_TABLE)} l SET column_types = t.kinds
        FROM (
          SELECT r.landing_date, r.source_file, map_from_entries(list_filter([{entries}], e -> e.v IS NOT NULL)) AS kinds
          FROM {sql.ident(spec.raw_table)} r
          WHERE {sql.in_window("landing_date", window, table_alias="r")} AND r.source_row <= {sql.literal(SAMPLED_ROWS)}
          GROUP BY r.landing_date, r.source_file
        ) t
        WHERE l.source = {sql.literal(spec.name)} AND l.landing_date = t.landing_date
          AND l.source_file = t.source_file AND l.column_types IS NULL"""
    )


def batch_kinds(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, window: DateWindow
) -> list[tuple[str, dt.date, dict[str, str]]]:
    """(source_file, landing day, column -> kind) of the window's batches and of the HISTORY_DAYS before it."""
    reach = (window[0] - dt.timedelta(days=HISTORY_DAYS), window[1])
    rows = con.execute(
        f"""SELECT source_file, landing_date, column_types FROM {sql.ident(LEDGER_TABLE)}
            WHERE {ledger_scope(spec, reach)} AND column_types IS NOT NULL"""
    ).fetchall()
    return [(f, day, dict(kinds)) for f, day, kinds in rows]


def usual_kinds(batches: list[tuple[str, dt.date, dict[str, str]]], day: dt.date) -> dict[str, str]:
    """Each column's most frequent kind in the batches of the HISTORY_DAYS landing days before `day`."""
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for _, landed, kinds in batches:
        if day - dt.timedelta(days=HISTORY_DAYS) <= landed < day:
            for column, kind in kinds.items():
                counts[column][kind] += 1
    # Ties go to the alphabetically first kind, so the verdict does not depend on row order.
    return {c: min(kc, key=lambda k: (-kc[k], k)) for c, kc in counts.items()}


def kind_changes(spec: SourceSpec, kinds: dict[str, str], usual: dict[str, str]) -> list[dict]:
    """A batch's columns whose kind differs from their usual one or cannot be read by the contract."""
    types = {c.name: c.duckdb_type for c in tc.columns(spec.contract)}
    changes = []
    for column, kind in sorted(kinds.items()):
        readable = READABLE_KINDS.get(types.get(column, "VARCHAR"))
        unreadable = readable is not None and kind not in readable
        was = usual.get(column)
        if unreadable or (was is not None and was != kind):
            changes.append(
                {
                    "column": column,
                    "was": was,
                    "now": kind,
                    "contract_type": types.get(column),
                    "readable": not unreadable,
                }
            )
    return changes
