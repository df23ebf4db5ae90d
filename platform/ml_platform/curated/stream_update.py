"""Applying a micro-batch to a stream feature view: set-based, incremental, in the caller's transaction.

A micro-batch is what one raw run of the stream source read: its rows share one `ingested_at`.
The batches a view has applied are recorded in `stream_view_batches`; every one not yet applied
is applied, oldest first, whatever partition the run is for, so a view catches up after a
crash or a failed step by itself and never applies a batch twice.

For a batch:
1. its raw rows go through the source's staging, the clean layer's own parsing and contract rules
   (`clean.staging`): a message the clean table would quarantine never counts, here either;
2. one copy per event key, minus events the view already holds, minus events too old to fall in
   their entity's window ever again (older than its newest event time minus the window);
3. the entities those events belong to get their new head (newest event time) and one row each:
   the aggregates over their events in (head - window, head];
4. events that no head's window can reach any more are dropped from the state. Heads only move
   forward, so an event older than its entity's head minus the window never counts again.

So the state holds about one window of events per active entity, and a batch costs what its
entities' windows hold, not what the stream has carried. Applied in the same order, the batches
give the same rows to the last bit (sums are exact DECIMALs): the view can be rebuilt and
audited from raw.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import duckdb

from ml_platform import privacy
from ml_platform.clean import staging
from ml_platform.contracts import table_contract as tc
from ml_platform.contracts import writer
from ml_platform.contracts.writer import ContractTable
from ml_platform.curated.stream_view import BATCH, BATCH_DATE, CREATED, TIMESTAMP, StreamFeatureView
from ml_platform.lakehouse import tables, views
from ml_platform.lakehouse.working_copy import WorkingCopy
from ml_platform.raw.spec import SourceSpec
from ml_platform.warehouse import sql

APPLIED_TABLE = "stream_view_batches"
APPLIED_COLUMNS = """
  view VARCHAR NOT NULL,
  batch_ingested_at TIMESTAMP NOT NULL,
  batch_date DATE NOT NULL,
  events BIGINT NOT NULL,
  rows BIGINT NOT NULL,
  ignored_as_older BIGINT NOT NULL,
  applied_at TIMESTAMP NOT NULL,
  run_id VARCHAR,
  PRIMARY KEY (view, batch_ingested_at)
"""


@dataclasses.dataclass(frozen=True)
class Batch:
    ingested_at: dt.datetime
    landing_date: dt.date


@dataclasses.dataclass
class Applied:
    """What applying one batch did."""

    batch: Batch
    events: int  # new distinct events it brought to the view
    rows: list[dict]  # the view rows written (pseudonymized keys), with their created time
    ignored: int  # rows the online store already held with a newer timestamp


def view_table(view: StreamFeatureView) -> ContractTable:
    return ContractTable(view.name, view.contract, BATCH_DATE)


def open_tables(con: duckdb.DuckDBPyConnection, view: StreamFeatureView, spec: SourceSpec) -> WorkingCopy | None:
    """The view's tables, ready for `apply_batch` in `con`'s transaction. On the lake they are
    temporary tables shadowing the warehouse's views, a working copy (`lakehouse.working_copy`):
    the view's rows are appended, the applied batches (of this view) and the state (events, heads:
    about one window per entity) compared with the rows copied in; `commit_tables` commits them in
    one catalog commit. Otherwise warehouse tables (None)."""
    typed = ", ".join(f"{sql.ident(c.name)} {c.duckdb_type}" for c in tc.columns(spec.contract) if _is_source(spec, c))
    keys = ", ".join(f"{sql.ident(c)} VARCHAR" for c in view.entity_columns)
    ddl = {
        APPLIED_TABLE: APPLIED_COLUMNS,
        view.events_table: f"{typed}, ingested_at TIMESTAMP NOT NULL",
        view.heads_table: f"{keys}, head TIMESTAMP NOT NULL",
    }
    if not writer.on_lake():
        view_table(view).create(con)
        for name, columns in ddl.items():
            con.execute(f"CREATE TABLE IF NOT EXISTS {sql.ident(name)} ({columns})")
        return None
    # Tables of these names in the warehouse file (from before they moved to the lake) first become lake tables.
    views.adopt_tables(
        con,
        [
            (view.name, BATCH_DATE, None),
            (APPLIED_TABLE, BATCH_DATE, "view"),
            *((n, None, None) for n in ddl if n != APPLIED_TABLE),
        ],
    )
    con.execute(tc.create_table_sql(view.contract, view.name, temporary=True))
    for name, columns in ddl.items():
        con.execute(f"CREATE TEMP TABLE {sql.ident(name)} ({columns})")
    copy = WorkingCopy(con)
    copy.appends(view.name, BATCH_DATE)
    copy.diff(APPLIED_TABLE, BATCH_DATE, scope=("view", view.name))
    copy.diff(view.events_table, None)
    copy.diff(view.heads_table, None)
    return copy


def commit_tables(con: duckdb.DuckDBPyConnection, copy: WorkingCopy | None, run_id: str) -> None:
    """The working copy's changes committed to the lake in one catalog commit, its temporary tables
    dropped and the warehouse's views pointed at the new snapshots (nothing to do off the lake)."""
    if copy is None:
        return
    copy.commit(run_id)
    copy.drop()
    for name in copy.tracked:
        if (table := tables.load_table(name)) is not None:
            views.point_view(con, name, table)


def _is_source(spec: SourceSpec, column) -> bool:
    return column.name in spec.source_columns


def pending_batches(
    con: duckdb.DuckDBPyConnection, view: StreamFeatureView, spec: SourceSpec, through: dt.date
) -> list[Batch]:
    """The source's batches landed on or before `through` that the view has not applied, oldest first."""
    found = con.execute(
        f"""SELECT DISTINCT r.ingested_at, r.landing_date FROM {sql.ident(spec.raw_table)} r
        WHERE r.landing_date <= ? AND NOT EXISTS (
          SELECT 1 FROM {sql.ident(APPLIED_TABLE)} a WHERE a.view = ? AND a.batch_ingested_at = r.ingested_at)
        ORDER BY 1""",
        [through, view.name],
    ).fetchall()
    return [Batch(at, day) for at, day in found]


def apply_batch(
    con: duckdb.DuckDBPyConnection,
    view: StreamFeatureView,
    spec: SourceSpec,
    batch: Batch,
    publish,
    run_id: str | None,
) -> Applied:
    """Apply `batch` to the view's state and table. `publish(rows) -> created times` makes the
    new rows servable (the online store, or now when there is none) and says from when; a row it
    returns None for (the store holds a newer one) is not written."""
    entity = ", ".join(sql.ident(c) for c in view.entity_columns)
    on_entity = _match("e", "h", view.entity_columns)
    keys = ", ".join(sql.ident(c) for c in spec.key_columns)
    t = sql.ident(spec.event_time_column)
    window = f"to_microseconds({view.window // dt.timedelta(microseconds=1)})"
    source_columns = ", ".join(sql.ident(c) for c in spec.source_columns)

    # 1. The batch's rows, parsed and judged as the clean layer does.
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _batch_raw AS SELECT * FROM {sql.ident(spec.raw_table)}"
        " WHERE ingested_at = ? AND landing_date = ?",
        [batch.ingested_at, batch.landing_date],
    )
    staged = staging.staged_rows_sql(spec, (batch.landing_date, batch.landing_date), raw_relation="_batch_raw")
    # 2. One copy per event key, new to the view and still able to count.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _batch_events AS
        SELECT b.* FROM (
          SELECT {source_columns}, ingested_at FROM ({staged}) WHERE _violation IS NULL
          QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY source_file, source_row) = 1
        ) b
        WHERE NOT EXISTS (SELECT 1 FROM {sql.ident(view.events_table)} e
                          WHERE {_match("e", "b", spec.key_columns)})
          AND NOT EXISTS (SELECT 1 FROM {sql.ident(view.heads_table)} h
                          WHERE {_match("b", "h", view.entity_columns)} AND b.{t} <= h.head - {window})"""
    )
    events = con.execute("SELECT count(*) FROM _batch_events").fetchone()[0]
    con.execute(f"INSERT INTO {sql.ident(view.events_table)} BY NAME SELECT * FROM _batch_events")
    # 3. The touched entities' new heads, and their aggregates over (head - window, head].
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _touched AS
        SELECT {entity}, greatest(max(b.{t}), any_value(h.head)) AS head
        FROM _batch_events b LEFT JOIN {sql.ident(view.heads_table)} h USING ({entity})
        GROUP BY ALL"""
    )
    aggregates = ",\n  ".join(f"{expr} AS {sql.ident(name)}" for name, expr in view.aggregates.items())
    rows_sql = f"""
      SELECT {", ".join(f"h.{sql.ident(c)}" for c in view.entity_columns)},
        -- As of the head, but never later than the batch was read: a producer clock running ahead
        -- must not make a row available offline later than online lookups could see it.
        least(h.head, {sql.literal(batch.ingested_at)}::TIMESTAMP) AS {TIMESTAMP},
        {sql.literal(batch.ingested_at)}::TIMESTAMP AS {BATCH}, {sql.literal(batch.landing_date)}::DATE AS {BATCH_DATE},
        {aggregates}
      FROM _touched h JOIN {sql.ident(view.events_table)} e ON {on_entity}
        AND e.{t} > h.head - {window} AND e.{t} <= h.head
      GROUP BY ALL"""
    protected = privacy.protect(con, view.contract, rows_sql)
    cursor = con.execute(f"SELECT * FROM ({protected}) ORDER BY ALL")
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    created = publish(rows)
    written = [row | {CREATED: at} for row, at in zip(rows, created, strict=True) if at is not None]
    if written:
        columns = tc.column_names(view.contract)
        con.execute(
            f"INSERT INTO {sql.ident(view.name)} ({sql.columns_list(columns)}) VALUES "
            + ", ".join("(" + ", ".join("?" * len(columns)) + ")" for _ in written),
            [row[c] for row in written for c in columns],
        )
    # 4. Heads move forward; events no head's window reaches any more are dropped.
    con.execute(
        f"""DELETE FROM {sql.ident(view.heads_table)} h USING _touched t
        WHERE {_match("h", "t", view.entity_columns)}"""
    )
    con.execute(f"INSERT INTO {sql.ident(view.heads_table)} SELECT {entity}, head FROM _touched")
    con.execute(
        f"""DELETE FROM {sql.ident(view.events_table)} e USING _touched h
        WHERE {on_entity} AND e.{t} <= h.head - {window}"""
    )
    con.execute(
        f"INSERT INTO {sql.ident(APPLIED_TABLE)} VALUES (?, ?, ?, ?, ?, ?, now()::TIMESTAMP, ?)",
        [view.name, batch.ingested_at, batch.landing_date, events, len(written), len(rows) - len(written), run_id],
    )
    for temp in ("_batch_raw", "_batch_events", "_touched"):
        con.execute(f"DROP TABLE {temp}")
    return Applied(batch, events, written, len(rows) - len(written))


def _match(left: str, right: str, columns) -> str:
    return " AND ".join(f"{left}.{sql.ident(c)} = {right}.{sql.ident(c)}" for c in columns)
