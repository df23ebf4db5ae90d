"""Writes a window of a clean table and its quarantine atomically, and accounts for every row.

The clean table is written through the shared writer (`ContractTable.replace`), the quarantine
beside it, in the caller's transaction: running the same partitions twice leaves identical
tables, and a crash leaves the previous state. Event sources replace a window of event days;
snapshot sources rebuild their version history (valid_from / valid_to) from the first daily
snapshot that changed (`snapshot_history`).

Every term of the accounting is counted on its own, from where the rows ended up, so a row lost
anywhere on the way (a raw row without its ledger entry, a failed insert) breaks the balance:

    raw_rows_scanned = accepted + quarantined + duplicates_removed + deleted_at_source
                       + owned_by_other_days
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import duckdb

from ml_platform.clean import snapshot_history, staging
from ml_platform.contracts import writer
from ml_platform.contracts.writer import ContractTable
from ml_platform.lakehouse import staged, views
from ml_platform.raw.schema_policy import rejected_batches
from ml_platform.raw.spec import SourceSpec
from ml_platform.raw.table import create_raw_tables
from ml_platform.warehouse import sql
from ml_platform.warehouse.sql import DateWindow

QUARANTINE_PARTITION = "partition_date"
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


class AccountingError(RuntimeError):
    """Rows read from raw do not add up to where they went: something was lost or doubled."""


@dataclass
class CleanAccounting:
    """Where every raw row read by one clean write went.

    For snapshot sources `accepted` counts accepted snapshot rows; `history_rows` the versions kept.
    """

    raw_rows_scanned: int = 0
    accepted: int = 0
    quarantined: int = 0
    duplicates: int = 0
    deleted: int = 0
    owned_by_other_days: int = 0
    late_rows: int = 0
    history_rows: int | None = None
    # Snapshot sources: the first snapshot day rebuilt (versions valid before it are unchanged);
    # None when the whole history was rebuilt.
    changed_from: dt.date | None = None
    extra_columns: list[str] = field(default_factory=list)
    quarantined_by_rule: dict[str, int] = field(default_factory=dict)
    by_partition: dict[str, dict] = field(default_factory=dict)
    partition_rows: dict[str | None, int] = field(default_factory=dict)

    @property
    def accounted(self) -> int:
        return self.accepted + self.quarantined + self.duplicates + self.deleted + self.owned_by_other_days

    @property
    def balanced(self) -> bool:
        return self.raw_rows_scanned == self.accounted

    @property
    def rows_in_scope(self) -> int:
        """Rows the written partitions own: the quarantine threshold's denominator."""
        return self.accepted + self.quarantined + self.duplicates + self.deleted

    def owned_by(self, partition: str) -> int:
        """Rows one partition owns (the same terms as `rows_in_scope`, for that partition)."""
        figures = self.by_partition.get(partition, {})
        return sum(figures.get(k, 0) for k in ("accepted", "quarantined", "duplicates_removed", "deleted_at_source"))


def clean_table(spec: SourceSpec) -> ContractTable:
    return ContractTable(spec.clean_table, spec.contract, spec.partition_column)


def create_clean_tables(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> None:
    create_raw_tables(con, spec)
    clean_table(spec).create(con)
    if writer.on_lake():
        empty = views.empty_table(spec.quarantine_table)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {sql.ident(empty)} ({QUARANTINE_COLUMNS})")
        views.ensure_view(con, spec.quarantine_table, f"SELECT * FROM {sql.ident(empty)}", QUARANTINE_PARTITION)
    else:
        con.execute(f"CREATE TABLE IF NOT EXISTS {sql.ident(spec.quarantine_table)} ({QUARANTINE_COLUMNS})")


def _replace_quarantine(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, window: DateWindow | None, owned: str
) -> None:
    """The window's quarantined rows (every day, without one) replaced with `_stage`'s violations:
    on the lake beside the clean table, committed with it, or in the warehouse file."""
    rows = f"""SELECT _partition::DATE AS partition_date, _violation AS rule,
               split_part(_violation, ':', 1) AS column_name, source_file, source_row::BIGINT AS source_row,
               landing_date::DATE AS landing_date, ingested_at::TIMESTAMP AS ingested_at, record::JSON AS record,
               now()::TIMESTAMP AS quarantined_at
        FROM _stage WHERE _violation IS NOT NULL AND {owned}"""
    if writer.on_lake():
        # The days the window holds now or gets rows on (a snapshot source's window runs to the
        # end of time: its days are not listed one by one).
        held = con.execute(
            f"""SELECT DISTINCT partition_date FROM {sql.ident(spec.quarantine_table)}
                WHERE {sql.in_window(QUARANTINE_PARTITION, window)}
                UNION SELECT DISTINCT partition_date FROM ({rows}) WHERE partition_date IS NOT NULL"""
        ).fetchall()
        staged.stage(con, spec.quarantine_table, QUARANTINE_PARTITION, rows, sorted(day for (day,) in held))
        return
    quarantine = sql.ident(spec.quarantine_table)
    con.execute(f"DELETE FROM {quarantine} WHERE {sql.in_window(QUARANTINE_PARTITION, window)}")
    con.execute(f"INSERT INTO {quarantine} BY NAME {rows}")


def write_clean(con: duckdb.DuckDBPyConnection, spec: SourceSpec, window: DateWindow | None) -> CleanAccounting:
    """Replace `window` of event days (None: the snapshot source's whole history); raises
    AccountingError, rolling the caller's transaction back, when the rows do not balance."""
    create_clean_tables(con, spec)
    # Snapshot sources: rebuild the history from the first snapshot that changed (None: all of it).
    start = snapshot_history.rebuild_from(con, spec) if window is None else None
    if window:
        landing_window = staging.raw_window(spec, window)
    else:
        landing_window = (start[0], snapshot_history.LATEST_DAY) if start else None
    rejected = rejected_batches(con, spec, landing_window)
    stage_sql = staging.staged_rows_sql(spec, window, rejected, snapshots_from=start[0] if start else None)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _stage AS {stage_sql}")
    owned = sql.in_window("_partition", window)
    # The winning copy of each key per partition; every other valid copy is a duplicate.
    deleted = f"{sql.ident(spec.soft_delete_column)} IS NOT NULL" if spec.soft_delete_column else "FALSE"
    winners = f"""SELECT *, {deleted} AS _deleted FROM _stage WHERE _violation IS NULL AND {owned}
        QUALIFY row_number() OVER ({staging.dedup_order(spec)}) = 1"""
    table = clean_table(spec)
    if window is None:
        # Snapshot history adds the versions it carries over to the winners: a table.
        con.execute(f"CREATE OR REPLACE TEMP TABLE _winners AS {winners}")
        con.execute("ALTER TABLE _winners ADD COLUMN _carried_from DATE")
        if start:
            snapshot_history.carry_open_versions(con, spec, start)
            table.replace(con, None, snapshot_history.rebuilt_history_sql(con, spec, start))
        else:
            table.replace(con, None, snapshot_history.history_sql(spec))
        snapshot_history.remember_snapshots(con, spec)
        history_rows = table.total(con)
        partition_rows = {None: history_rows}
        won = WON_FROM_WINNERS
    else:
        # Event sources: the winners go straight into the table. Materialized first, they were one
        # more copy of every kept row, which spilled to disk under the memory limit from 1 M rows.
        con.execute(f"CREATE OR REPLACE TEMP VIEW _winners AS {winners}")
        partition_rows = table.replace(con, window, "SELECT * FROM _winners WHERE NOT _deleted")
        history_rows = None
        won = _won_apart(spec, owned)

    # The quarantine's window: the event days written, or the snapshot days rebuilt.
    quarantine_window = window or landing_window
    _replace_quarantine(con, spec, quarantine_window, owned)
    acc = _account(con, spec, window, landing_window, partition_rows, quarantine_window, won)
    acc.history_rows = history_rows
    acc.changed_from = start[0] if start else None
    con.execute(f"DROP {'TABLE' if window is None else 'VIEW'} _winners")
    con.execute("DROP TABLE _stage")
    if not acc.balanced:
        raise AccountingError(
            f"{spec.clean_table}: {acc.raw_rows_scanned} raw rows read, but {acc.accounted} accounted for "
            f"(accepted {acc.accepted}, quarantined {acc.quarantined}, duplicates {acc.duplicates}, "
            f"deleted {acc.deleted}, owned by other days {acc.owned_by_other_days}); nothing was written"
        )
    return acc


# Winners per partition, kept and deleted at source, from the winners' table or view.
WON_FROM_WINNERS = """SELECT _partition, count(*) FILTER (WHERE NOT _deleted) AS kept,
  count(*) FILTER (WHERE _deleted) AS deleted FROM _winners GROUP BY _partition"""


def _won_apart(spec: SourceSpec, owned: str) -> str:
    """Winners per partition, counted apart from the write that chose them (a row the insert lost
    must not pass for a duplicate): one per distinct key among the valid rows each partition owns.
    Which winners are deleted at source depends on the dedup order: for sources with a soft-delete
    column they are counted from the winners' view, which computes that order once more."""
    if spec.soft_delete_column:
        return WON_FROM_WINNERS
    keys = ", ".join(sql.ident(k) for k in spec.key_columns)
    return f"""SELECT _partition, count(*) AS kept, 0 AS deleted FROM (
  SELECT DISTINCT _partition, {keys} FROM _stage WHERE _violation IS NULL AND {owned}
) GROUP BY _partition"""


def _account(
    con,
    spec: SourceSpec,
    window: DateWindow | None,
    landing_window: DateWindow | None,
    partition_rows: dict[str | None, int],
    quarantine_window: DateWindow | None,
    won: str,
) -> CleanAccounting:
    """Counts each term from its own source: raw, the written tables, the staged rows (`won`: the
    winners per partition, see `_won_apart`)."""
    raw = sql.ident(spec.raw_table)
    owned = sql.in_window("_partition", window)
    acc = CleanAccounting(partition_rows=partition_rows)
    acc.raw_rows_scanned = con.execute(
        f"SELECT count(*) FROM {raw} WHERE {sql.in_window('landing_date', landing_window)}"
    ).fetchone()[0]
    acc.owned_by_other_days = con.execute(f"SELECT count(*) FROM _stage WHERE NOT ({owned})").fetchone()[0]
    late_sql = "count(*) FILTER (WHERE _violation IS NULL AND _partition < landing_date)" if window else "0"
    # Each side is counted per partition before the join: joining the staged rows themselves
    # would hold all of them at once (10 M rows did not fit a 400 MB memory limit).
    per_partition = con.execute(
        f"""
        WITH staged AS (
          SELECT _partition, count(*) FILTER (WHERE _violation IS NULL) AS valid, {late_sql} AS late_rows
          FROM _stage WHERE {sql.in_window("_partition", window)} GROUP BY _partition
        ),
        won AS ({won}),
        quarantined AS (
          SELECT partition_date AS _partition, count(*) AS n FROM {sql.ident(spec.quarantine_table)}
          WHERE {sql.in_window("partition_date", quarantine_window)} GROUP BY 1
        )
        SELECT strftime(s._partition, '%Y-%m-%d'), coalesce(q.n, 0), s.valid, s.late_rows,
               coalesce(w.kept, 0), coalesce(w.deleted, 0)
        FROM staged s LEFT JOIN won w USING (_partition) LEFT JOIN quarantined q USING (_partition)
        ORDER BY s._partition
        """
    ).fetchall()
    for partition, quarantined, valid, late_rows, kept, deleted in per_partition:
        duplicates = valid - kept - deleted
        acc.by_partition[partition] = {
            "accepted": kept,
            "quarantined": quarantined,
            "duplicates_removed": duplicates,
            "deleted_at_source": deleted,
            "late_rows": late_rows,
        }
        acc.quarantined += quarantined
        acc.duplicates += duplicates
        acc.deleted += deleted
        acc.late_rows += late_rows
    # Accepted rows are what the clean table holds now (snapshot sources: the accepted snapshot rows).
    if window is None:
        acc.accepted = sum(p["accepted"] for p in acc.by_partition.values())
    else:
        acc.accepted = sum(partition_rows.values())
    acc.quarantined_by_rule = dict(
        con.execute(
            f"SELECT _violation, count(*) FROM _stage WHERE _violation IS NOT NULL AND {owned} GROUP BY 1 ORDER BY 1"
        ).fetchall()
    )
    acc.extra_columns = [
        r[0]
        for r in con.execute(f"SELECT DISTINCT unnest(_extra_columns) FROM _stage WHERE {owned} ORDER BY 1").fetchall()
    ]
    return acc
