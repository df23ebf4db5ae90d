"""The `references` check: values that point at a dimension are known there, as of their day.

Events and transactions name users and products. A value the dimension never had, or no longer
had on the row's day, is an orphan: features joined on it come out empty. Per written day and
reference, the distinct (day, value) pairs are looked up in the dimension once (the pairs are
few: users per day, not events), then weighed by their rows. Each day's orphans are counted and
a sorted sample of them is kept: the values themselves, or, for a personal column (a user id,
which no check sample may show), where each first appears (`source_file:source_row`). Values the
dimension cannot have caught up with yet (days after its last snapshot minus the lag) are counted
as unresolved instead.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb

from ml_platform.checks.verdicts import ERROR, PASS, WARN, verdict
from ml_platform.contracts.quality_rules import Reference
from ml_platform.contracts.writer import table_exists
from ml_platform.partitions import window_keys
from ml_platform.results import Verdict
from ml_platform.warehouse import sql
from ml_platform.warehouse.sql import DateWindow

REFERENCES_CHECK = "references"
SAMPLE_ORPHANS = 5


def _versioned(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether the dimension keeps versions (valid_from / valid_to), so as-of applies."""
    found = con.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE table_name = ? AND column_name IN ('valid_from', 'valid_to')",
        [table],
    ).fetchone()[0]
    return found == 2


def _known_condition(ref: Reference, versioned: bool) -> str:
    """When a dimension row `d` makes the pair (`p._day`, `p._value`) known."""
    match = f"d.{sql.ident(ref.key)} = p._value"
    if not versioned:
        return match
    return (
        f"{match} AND d.valid_from <= p._day + {sql.literal(ref.lag_days)}"
        " AND (d.valid_to IS NULL OR d.valid_to > p._day)"
    )


def reference_figures(
    con: duckdb.DuckDBPyConnection,
    ref: Reference,
    table: str,
    day_column: str,
    window: DateWindow,
    dimension_through: dt.date | None,
    personal: bool = False,
) -> dict[str, tuple[int, int, int, list[str]]] | None:
    """Per day: (rows with a value, orphan rows, unresolved rows, sample of orphan values);
    None when the dimension does not exist yet. `dimension_through`: the last day the dimension
    has a snapshot of (None: it is not snapshotted, so every value can be told). `personal`: the
    sample names where orphans first appear instead of their values."""
    if not table_exists(con, ref.table):
        return None
    day, column = sql.ident(day_column), sql.ident(ref.column)
    # A day is told once the dimension holds its lag days; before that, unknown is unresolved.
    told = (
        "TRUE"
        if dimension_through is None
        else f"p._day + {sql.literal(ref.lag_days)} <= {sql.literal(dimension_through)}"
    )
    rows = con.execute(
        f"""
        WITH pairs AS (
          SELECT {day} AS _day, CAST({column} AS VARCHAR) AS _value, count(*) AS _rows,
                 min(source_file || ':' || CAST(source_row AS VARCHAR)) AS _where
          FROM {sql.ident(table)} WHERE {sql.in_window(day_column, window)} AND {column} IS NOT NULL
          GROUP BY 1, 2
        ),
        judged AS (
          SELECT p.*, EXISTS (
                   SELECT 1 FROM {sql.ident(ref.table)} d WHERE {_known_condition(ref, _versioned(con, ref.table))}
                 ) AS _known, {told} AS _told
          FROM pairs p
        )
        SELECT strftime(_day, '%Y-%m-%d'), sum(_rows),
               coalesce(sum(_rows) FILTER (WHERE NOT _known AND _told), 0),
               coalesce(sum(_rows) FILTER (WHERE NOT _known AND NOT _told), 0),
               coalesce(list_sort(list({"_where" if personal else "_value"}) FILTER (WHERE NOT _known AND _told))
                        [1:{SAMPLE_ORPHANS}], [])
        FROM judged GROUP BY 1"""
    ).fetchall()
    return {d: (int(n), int(orphans), int(unresolved), sample) for d, n, orphans, unresolved, sample in rows}


def judge_references(
    con: duckdb.DuckDBPyConnection,
    refs: tuple[Reference, ...],
    table: str,
    day_column: str,
    window: DateWindow,
    dimensions_through: dict[str, dt.date | None],
    personal: frozenset[str] = frozenset(),
) -> dict[str, Verdict]:
    """One verdict per day of `window`, over all of the table's references (`personal`: the
    table's personal columns, whose values no sample shows)."""
    figures = {
        ref: reference_figures(
            con, ref, table, day_column, window, dimensions_through.get(ref.table), ref.column in personal
        )
        for ref in refs
    }
    verdicts = {}
    for partition in window_keys(window):
        level, problems, metadata, findings = PASS, [], {}, []
        for ref, by_day in figures.items():
            if by_day is None:
                findings.append(
                    {"reference": ref.describe(), "judged": False, "why": f"{ref.table} does not exist yet"}
                )
                continue
            rows, orphans, unresolved, sample = by_day.get(partition, (0, 0, 0, []))
            rate = orphans / rows if rows else 0.0
            ref_level = ERROR if rate > ref.error_rate else WARN if rate > ref.warn_rate else PASS
            prefix = ref.column
            metadata |= {
                f"{prefix}_rows": rows,
                f"{prefix}_orphans": orphans,
                f"{prefix}_orphan_rate": round(rate, 6),
                f"{prefix}_unresolved": unresolved,
            }
            finding = {"reference": ref.describe(), "orphans": orphans, "unresolved": unresolved, "sample": sample}
            findings.append(finding)
            if ref_level != PASS:
                limit = ref.error_rate if ref_level == ERROR else ref.warn_rate
                problems.append(
                    f"{orphans} of {rows} rows ({rate:.1%}) have a {ref.column} unknown to {ref.table} on their day"
                    f" (limit {limit:.0%}; {'first in' if ref.column in personal else 'e.g.'} {', '.join(sample)})"
                )
                level = max(level, ref_level)
        metadata["references"] = dg.MetadataValue.json(findings)
        verdicts[partition] = verdict(level, metadata, f"{partition}: " + "; ".join(problems) if problems else None)
    return verdicts
