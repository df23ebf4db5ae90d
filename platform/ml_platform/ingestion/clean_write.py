"""Writes a window of a clean table and its quarantine atomically, and accounts for every row.

Delete-window-then-insert inside one transaction makes the write idempotent: running the
same partitions twice leaves identical tables, and a crash leaves the previous state.
Event sources replace a window of event days; snapshot sources rebuild their whole version
history (valid_from / valid_to) from every daily snapshot.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import duckdb

from ml_platform.contracts import table_contract as tc
from ml_platform.ingestion import clean_sql
from ml_platform.ingestion.raw_files import create_raw_tables
from ml_platform.ingestion.schema_check import rejected_batches
from ml_platform.sources.spec import SourceSpec

QUARANTINE_COLUMNS = """
  partition_date DATE NOT NULL,
  rule VARCHAR NOT NULL,
  column_name VARCHAR NOT NULL,
  source_file VARCHAR NOT NULL,
  source_row BIGINT NOT NULL,
  landing_date DATE NOT NULL,
  ingested_at TIMESTAMP NOT NULL,
  record JSON NOT NULL,
  quarantined_at TIMESTAMP NOT NULL
"""


@dataclass
class CleanAccounting:
    """rows_read = clean + quarantined + duplicates + deleted + out_of_partition, always.

    For snapshot sources `clean` counts accepted snapshot rows; `history_rows` the versions kept.
    """

    rows_read: int = 0
    clean: int = 0
    quarantined: int = 0
    duplicates: int = 0
    deleted: int = 0
    out_of_partition: int = 0
    late_rows: int = 0
    history_rows: int | None = None
    extra_columns: list[str] = field(default_factory=list)
    quarantined_by_rule: dict[str, int] = field(default_factory=dict)
    by_partition: list[dict] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return self.rows_read == self.clean + self.quarantined + self.duplicates + self.deleted + self.out_of_partition


def create_clean_tables(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> None:
    create_raw_tables(con, spec)
    con.execute(tc.create_table_sql(spec.contract, spec.clean_table))
    con.execute(f"CREATE TABLE IF NOT EXISTS {tc.quote(spec.quarantine_table)} ({QUARANTINE_COLUMNS})")


def _between(column: str, window) -> str:
    return f"{tc.quote(column)} BETWEEN DATE '{window[0]}' AND DATE '{window[1]}'"


def write_clean(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, window: tuple[dt.date, dt.date] | None
) -> CleanAccounting:
    """Replace `window` of event days (None: the snapshot source's whole history)."""
    create_clean_tables(con, spec)
    con.execute("DROP TABLE IF EXISTS _stage")
    landing_window = clean_sql.raw_window(spec, window) if window else None
    rejected = rejected_batches(con, spec, landing_window)
    con.execute(f"CREATE TEMP TABLE _stage AS {clean_sql.staged_rows_sql(spec, window, rejected)}")
    # The winning copy of each key per partition; everything else valid is a duplicate.
    deleted = f"{tc.quote(spec.soft_delete_column)} IS NOT NULL" if spec.soft_delete_column else "FALSE"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _winners AS
        SELECT *, {deleted} AS _deleted FROM _stage WHERE _violation IS NULL
        QUALIFY row_number() OVER ({clean_sql.dedup_order(spec)}) = 1"""
    )
    if window is None:
        rows_read = con.execute(f"SELECT count(*) FROM {tc.quote(spec.raw_table)}").fetchone()[0]
        history_rows = _write_history(con, spec)
    else:
        rows_read = con.execute(
            f"SELECT count(*) FROM {tc.quote(spec.raw_table)} WHERE landing_date BETWEEN ? AND ?", list(landing_window)
        ).fetchone()[0]
        cols = ", ".join(tc.quote(c.name) for c in tc.columns(spec.contract))
        con.execute(f"DELETE FROM {tc.quote(spec.clean_table)} WHERE {_between(spec.partition_column, window)}")
        con.execute(f"INSERT INTO {tc.quote(spec.clean_table)} ({cols}) SELECT {cols} FROM _winners WHERE NOT _deleted")
        history_rows = None

    quarantine = tc.quote(spec.quarantine_table)
    con.execute(f"DELETE FROM {quarantine} WHERE {_between('partition_date', window) if window else 'TRUE'}")
    con.execute(
        f"""INSERT INTO {quarantine}
        SELECT _partition, _violation, split_part(_violation, ':', 1), source_file, source_row,
               landing_date, ingested_at, record, now()::TIMESTAMP
        FROM _stage WHERE _violation IS NOT NULL"""
    )
    acc = _account(con, spec, rows_read, late=window is not None)
    acc.history_rows = history_rows
    con.execute("DROP TABLE _stage")
    con.execute("DROP TABLE _winners")
    return acc


def _write_history(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> int:
    """SCD2 from daily snapshots: a version starts when a key appears or its attributes change,
    and ends at the first later snapshot where it is absent, deleted or different."""
    keys = [tc.quote(k) for k in spec.key_columns]
    key_list = ", ".join(keys)
    attributes = [tc.quote(c) for c in spec.source_columns if c not in spec.key_columns]
    attr_hash = f"md5(CAST(to_json(struct_pack({', '.join(f'{a} := {a}' for a in attributes)})) AS VARCHAR))"
    cols = ", ".join(tc.quote(c.name) for c in tc.columns(spec.contract))
    con.execute(f"DELETE FROM {tc.quote(spec.clean_table)}")
    con.execute(
        f"""
        INSERT INTO {tc.quote(spec.clean_table)} ({cols})
        WITH snapshots AS (
          SELECT _partition AS day, row_number() OVER (ORDER BY _partition) AS idx
          FROM (SELECT DISTINCT _partition FROM _stage)
        ),
        present AS (
          SELECT w.*, s.idx, {attr_hash} AS _hash
          FROM _winners w JOIN snapshots s ON s.day = w._partition
          WHERE NOT w._deleted
        ),
        starts AS (
          SELECT *, CASE WHEN idx - lag(idx) OVER k = 1 AND _hash = lag(_hash) OVER k THEN 0 ELSE 1 END AS _new
          FROM present WINDOW k AS (PARTITION BY {key_list} ORDER BY idx)
        ),
        versions AS (
          SELECT *, sum(_new) OVER (PARTITION BY {key_list} ORDER BY idx) AS _version FROM starts
        ),
        spans AS (
          SELECT {key_list}, _version, min(idx) AS first_idx, max(idx) AS last_idx FROM versions
          GROUP BY {key_list}, _version
        )
        SELECT {cols} FROM (
          SELECT v.* EXCLUDE (idx, _hash, _new, _version, _partition),
                 f.day AS valid_from, t.day AS valid_to,
                 (sp.last_idx = (SELECT max(idx) FROM snapshots)) AS is_current
          FROM spans sp
          JOIN versions v USING ({key_list}, _version)
          JOIN snapshots f ON f.idx = sp.first_idx
          LEFT JOIN snapshots t ON t.idx = sp.last_idx + 1
          WHERE v.idx = sp.first_idx
        )
        """
    )
    return con.execute(f"SELECT count(*) FROM {tc.quote(spec.clean_table)}").fetchone()[0]


def _account(con, spec: SourceSpec, rows_read: int, late: bool) -> CleanAccounting:
    late_sql = "count(*) FILTER (WHERE _violation IS NULL AND _partition < landing_date)" if late else "0"
    per_partition = con.execute(
        f"""
        WITH won AS (
          SELECT _partition, count(*) FILTER (WHERE NOT _deleted) AS clean, count(*) FILTER (WHERE _deleted) AS deleted
          FROM _winners GROUP BY _partition
        )
        SELECT s._partition, count(*) FILTER (WHERE s._violation IS NOT NULL) AS quarantined,
               count(*) FILTER (WHERE s._violation IS NULL) AS valid, {late_sql} AS late_rows,
               coalesce(any_value(w.clean), 0), coalesce(any_value(w.deleted), 0)
        FROM _stage s LEFT JOIN won w USING (_partition)
        GROUP BY s._partition ORDER BY s._partition
        """
    ).fetchall()
    acc = CleanAccounting(rows_read=rows_read)
    for partition, quarantined, valid, late_rows, clean, deleted in per_partition:
        duplicates = valid - clean - deleted
        acc.by_partition.append(
            {"partition": str(partition), "clean": clean, "quarantined": quarantined, "duplicates": duplicates,
             "deleted": deleted, "late_rows": late_rows}
        )
        acc.clean += clean
        acc.quarantined += quarantined
        acc.duplicates += duplicates
        acc.deleted += deleted
        acc.late_rows += late_rows
    acc.out_of_partition = rows_read - acc.clean - acc.quarantined - acc.duplicates - acc.deleted
    acc.quarantined_by_rule = dict(
        con.execute("SELECT _violation, count(*) FROM _stage WHERE _violation IS NOT NULL GROUP BY 1 ORDER BY 1").fetchall()
    )
    acc.extra_columns = [
        r[0] for r in con.execute("SELECT DISTINCT unnest(_extra_columns) FROM _stage ORDER BY 1").fetchall()
    ]
    return acc
