"""Writes a window of a clean table and its quarantine atomically, and accounts for every row.

Delete-window-then-insert inside one transaction makes the write idempotent: running the
same partitions twice leaves identical tables, and a crash leaves the previous state.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import duckdb

from ml_platform.contracts import table_contract as tc
from ml_platform.ingestion import clean_sql
from ml_platform.ingestion.raw_files import create_raw_tables
from ml_platform.sources.spec import FileSourceSpec

QUARANTINE_COLUMNS = """
  partition_date DATE,
  rule VARCHAR NOT NULL,
  column_name VARCHAR NOT NULL,
  source_file VARCHAR NOT NULL,
  source_row BIGINT NOT NULL,
  landing_date DATE,
  ingested_at TIMESTAMP NOT NULL,
  record JSON NOT NULL,
  quarantined_at TIMESTAMP NOT NULL
"""


@dataclass
class CleanAccounting:
    """rows_read = clean + quarantined + duplicates + out_of_partition, always."""

    rows_read: int = 0
    clean: int = 0
    quarantined: int = 0
    duplicates: int = 0
    out_of_partition: int = 0
    late_rows: int = 0
    extra_columns: list[str] = field(default_factory=list)
    quarantined_by_rule: dict[str, int] = field(default_factory=dict)
    by_partition: list[dict] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return self.rows_read == self.clean + self.quarantined + self.duplicates + self.out_of_partition


def create_clean_tables(con: duckdb.DuckDBPyConnection, spec: FileSourceSpec) -> None:
    create_raw_tables(con, spec)
    con.execute(tc.create_table_sql(spec.contract, spec.clean_table))
    con.execute(f"CREATE TABLE IF NOT EXISTS {tc.quote(spec.quarantine_table)} ({QUARANTINE_COLUMNS})")


def _partition_filter(spec: FileSourceSpec, column: str, window) -> str:
    if window is None:
        return "TRUE"
    return f"{tc.quote(column)} BETWEEN DATE '{window[0]}' AND DATE '{window[1]}'"


def write_clean(
    con: duckdb.DuckDBPyConnection, spec: FileSourceSpec, window: tuple[dt.date, dt.date] | None
) -> CleanAccounting:
    """Replace `window` (None: the whole snapshot) of the clean and quarantine tables."""
    create_clean_tables(con, spec)
    contract_cols = ", ".join(tc.quote(c.name) for c in tc.columns(spec.contract))
    con.execute("DROP TABLE IF EXISTS _stage")
    con.execute(f"CREATE TEMP TABLE _stage AS {clean_sql.staged_rows_sql(spec, window)}")

    raw_filter = "TRUE" if window is None else "landing_date BETWEEN ? AND ?"
    raw_params = [] if window is None else list(clean_sql.raw_window(spec, window))
    rows_read = con.execute(f"SELECT count(*) FROM {tc.quote(spec.raw_table)} WHERE {raw_filter}", raw_params).fetchone()[0]

    clean, quarantine = tc.quote(spec.clean_table), tc.quote(spec.quarantine_table)
    con.execute(f"DELETE FROM {clean} WHERE {_partition_filter(spec, spec.partition_column, window) if window else 'TRUE'}")
    con.execute(
        f"""INSERT INTO {clean} ({contract_cols})
        SELECT {contract_cols} FROM _stage WHERE _violation IS NULL
        QUALIFY row_number() OVER ({clean_sql.dedup_order(spec)}) = 1"""
    )
    quarantine_scope = _partition_filter(spec, "partition_date", window) if window else "partition_date IS NULL"
    con.execute(f"DELETE FROM {quarantine} WHERE {quarantine_scope}")
    con.execute(
        f"""INSERT INTO {quarantine}
        SELECT _partition, _violation, split_part(_violation, ':', 1), source_file, source_row,
               landing_date, ingested_at, record, now()::TIMESTAMP
        FROM _stage WHERE _violation IS NOT NULL"""
    )
    return _account(con, spec, window, rows_read)


def _account(con, spec: FileSourceSpec, window, rows_read: int) -> CleanAccounting:
    late = "count(*) FILTER (WHERE _violation IS NULL AND _partition < landing_date)" if window else "0"
    per_partition = con.execute(
        f"""
        WITH valid AS (
          SELECT _partition, count(*) AS valid,
                 count(DISTINCT ({", ".join(tc.quote(k) for k in spec.key_columns)})) AS distinct_keys
          FROM _stage WHERE _violation IS NULL GROUP BY _partition
        )
        SELECT s._partition, count(*) AS staged,
               count(*) FILTER (WHERE s._violation IS NOT NULL) AS quarantined,
               {late} AS late_rows,
               any_value(v.valid) AS valid, any_value(v.distinct_keys) AS clean
        FROM _stage s LEFT JOIN valid v USING (_partition)
        GROUP BY s._partition ORDER BY s._partition NULLS FIRST
        """
    ).fetchall()
    acc = CleanAccounting(rows_read=rows_read)
    for partition, staged, quarantined, late_rows, valid, clean in per_partition:
        valid, clean = valid or 0, clean or 0
        acc.by_partition.append(
            {"partition": str(partition) if partition else "snapshot", "clean": clean, "quarantined": quarantined,
             "duplicates": valid - clean, "late_rows": late_rows}
        )
        acc.clean += clean
        acc.quarantined += quarantined
        acc.duplicates += valid - clean
        acc.late_rows += late_rows
    acc.out_of_partition = rows_read - acc.clean - acc.quarantined - acc.duplicates
    acc.quarantined_by_rule = dict(
        con.execute("SELECT _violation, count(*) FROM _stage WHERE _violation IS NOT NULL GROUP BY 1 ORDER BY 1").fetchall()
    )
    acc.extra_columns = [
        r[0] for r in con.execute("SELECT DISTINCT unnest(_extra_columns) FROM _stage ORDER BY 1").fetchall()
    ]
    con.execute("DROP TABLE _stage")
    return acc
