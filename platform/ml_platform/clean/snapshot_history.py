"""Version history (SCD2) of snapshot sources, rebuilt only from the first snapshot that changed.

A snapshot source lands a full copy of its table each day, and its clean table keeps every
version of a row with `valid_from` / `valid_to` / `is_current`. Rebuilding that from every
snapshot on each run would cost more every day the source has landed. Instead the clean write
remembers what each landing day held when it last built the history (`<clean table>__snapshots`:
landing day -> its ledger batches) and restarts from the earliest day that changed since (a new
snapshot, a re-ingested or emptied one):
- versions that ended before that day stay as they are;
- versions still open in the snapshot before it are carried in as that snapshot's rows, keeping
  their `valid_from`, and the history is recomputed from there over the changed days onward.
The result equals a full rebuild (`platform_tests/test_snapshot_history.py` compares them after
every step). Without the state table (a first build, or a warehouse written before it existed),
or when the first snapshot itself changed, the whole history is rebuilt.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from ml_platform.contracts import writer
from ml_platform.contracts.writer import table_exists
from ml_platform.raw.spec import SourceSpec
from ml_platform.raw.table import LEDGER_TABLE, UNREADABLE
from ml_platform.warehouse import sql

LATEST_DAY = dt.date(9999, 12, 31)


def state_table(spec: SourceSpec) -> str:
    return history_state_table(spec.clean_table)


def history_state_table(clean_table: str) -> str:
    return f"{clean_table}__snapshots"


def snapshots_through(con: duckdb.DuckDBPyConnection, clean_table: str) -> dt.date | None:
    """The last landing day a snapshot source's history was built from (None: `clean_table` is not
    a snapshot history, or has none yet)."""
    state = history_state_table(clean_table)
    if not table_exists(con, state):
        return None
    return con.execute(f"SELECT max(landing_date) FROM {sql.ident(state)}").fetchone()[0]


def _signatures_sql(spec: SourceSpec) -> str:
    """Landing day -> its batches (file and ingestion time): changes whenever the day is re-read."""
    return f"""
        SELECT landing_date, string_agg(source_file || '@' || CAST(ingested_at AS VARCHAR), '|'
                                        ORDER BY source_file, ingested_at) AS batches
        FROM {sql.ident(LEDGER_TABLE)}
        WHERE source = {sql.literal(spec.name)} AND status IS DISTINCT FROM {sql.literal(UNREADABLE)}
        GROUP BY landing_date"""


def rebuild_from(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> tuple[dt.date, dt.date] | None:
    """(first changed snapshot day, the snapshot day before it) when the history can be rebuilt
    from there; None when it must be rebuilt whole."""
    state = state_table(spec)
    if not table_exists(con, state):
        return None
    changed = con.execute(
        f"""
        SELECT min(coalesce(now.landing_date, built.landing_date))
        FROM ({_signatures_sql(spec)}) now FULL JOIN {sql.ident(state)} built USING (landing_date)
        WHERE now.batches IS DISTINCT FROM built.batches
        """
    ).fetchone()[0]
    if changed is None:  # nothing new: recompute the latest snapshot only (cheap, and still checked)
        changed = con.execute(f"SELECT max(landing_date) FROM {sql.ident(state)}").fetchone()[0]
    if changed is None:
        return None
    previous = con.execute(
        f"SELECT max(landing_date) FROM {sql.ident(spec.raw_table)} WHERE landing_date < {sql.literal(changed)}"
    ).fetchone()[0]
    return None if previous is None else (changed, previous)


def carry_open_versions(con: duckdb.DuckDBPyConnection, spec: SourceSpec, start: tuple[dt.date, dt.date]) -> None:
    """Add to `_winners` the versions open in the snapshot before the rebuild, as that snapshot's
    rows (their `valid_from` kept in `_carried_from`)."""
    changed, previous = start
    columns = sql.columns_list([c for c in spec.contract.to_schema().columns if c not in spec.history_columns])
    con.execute(
        f"""INSERT INTO _winners BY NAME
        SELECT {columns}, {sql.literal(previous)} AS _partition, FALSE AS _deleted, valid_from AS _carried_from
        FROM {sql.ident(spec.clean_table)}
        WHERE valid_from < {sql.literal(changed)} AND (valid_to IS NULL OR valid_to >= {sql.literal(changed)})"""
    )


def rebuilt_history_sql(con: duckdb.DuckDBPyConnection, spec: SourceSpec, start: tuple[dt.date, dt.date]) -> str:
    """SELECT of the whole history after a rebuild from `start`: the versions that ended before
    the changed day, kept as they are, and the recomputed ones (`history_sql`, after
    `carry_open_versions`). The kept versions are copied first (a temporary table): the write
    replaces the table they are read from."""
    changed = sql.literal(start[0])
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _kept_versions AS SELECT * FROM {sql.ident(spec.clean_table)}
            WHERE valid_to IS NOT NULL AND valid_to < {changed}"""
    )
    return f"SELECT * FROM _kept_versions UNION ALL BY NAME ({history_sql(spec, previous=start[1])})"


def remember_snapshots(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> None:
    """Record what every landing day held for this build (in the write's transaction)."""
    writer.write_whole(con, state_table(spec), _signatures_sql(spec))


def history_sql(spec: SourceSpec, previous: dt.date | None = None) -> str:
    """SCD2 from daily snapshots (reads `_winners`): a version starts when a key appears or its
    attributes change, and ends at the first later snapshot where it is absent, deleted or different.
    `previous`: the snapshot day whose carried rows start a partial rebuild."""
    keys = [sql.ident(k) for k in spec.key_columns]
    key_list = ", ".join(keys)
    attributes = [sql.ident(c) for c in spec.source_columns if c not in spec.key_columns]
    attr_hash = f"md5(CAST(to_json(struct_pack({', '.join(f'{a} := {a}' for a in attributes)})) AS VARCHAR))"
    carried_day = "" if previous is None else f" UNION SELECT {sql.literal(previous)}"
    return f"""
        WITH snapshots AS (
          SELECT _partition AS day, row_number() OVER (ORDER BY _partition) AS idx
          FROM (SELECT DISTINCT _partition FROM _stage{carried_day})
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
        SELECT v.* EXCLUDE (idx, _hash, _new, _version, _partition, _carried_from),
               coalesce(v._carried_from, f.day) AS valid_from, t.day AS valid_to,
               (sp.last_idx = (SELECT max(idx) FROM snapshots)) AS is_current
        FROM spans sp
        JOIN versions v USING ({key_list}, _version)
        JOIN snapshots f ON f.idx = sp.first_idx
        LEFT JOIN snapshots t ON t.idx = sp.last_idx + 1
        WHERE v.idx = sp.first_idx
    """
