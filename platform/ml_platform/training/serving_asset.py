"""The serving snapshot: every feature view's latest vector per entity, as tables to look up.

`latest_<view>` holds one row per entity the view knows, with each feature as
`get_online_features` returns it now (the training definitions; values past the view's TTL
are null). It is rebuilt when a feature view updates; a service reads these small tables, or
calls `get_online_features` for a point lookup.

With an online store configured (`ML_PLATFORM_REDIS_URL`), the same run also writes each view's
newest row per entity (the row a lookup now would use: the best on the view's frontier available
by now, its values as stored, its timestamp beside them) into Redis, so every view is served from
there (`ml_platform.online_store`). Redis keeps a newer row it already holds (a real-time writer's);
the TTL is applied when it is read. A Redis that cannot be reached fails the run, naming it.
"""

# No `from __future__ import annotations`: Dagster reads the `context` annotation at definition time.
import datetime as dt

import dagster as dg

from ml_platform.automation import Read, on_new_input
from ml_platform.contracts.writer import table_exists, write_whole
from ml_platform.curated import FeatureView
from ml_platform.online_store import OnlineRow, RedisOnlineStore, configured_store
from ml_platform.point_in_time.frontier import AVAILABLE, frontier_rows, frontier_table
from ml_platform.training import ENTITY_TIMESTAMP, get_training_set
from ml_platform.warehouse import WAREHOUSE_POOL, Warehouse, sql

# Rows fetched from DuckDB and sent to Redis at a time: the table never sits in memory whole.
ONLINE_BATCH_ROWS = 5000


def serving_asset(views: list[FeatureView]) -> dg.AssetsDefinition:
    @dg.asset(
        name="latest_features",
        group_name="serving",
        kinds={"duckdb"},
        deps=[view.name for view in views],
        pool=WAREHOUSE_POOL,
        description="Each entity's current feature vector per feature view (tables latest_<view>), for serving.",
        automation_condition=on_new_input(tuple(Read.whole(view.name) for view in views)),
    )
    def _latest(context: dg.AssetExecutionContext, warehouse: Warehouse):
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        metadata = {"as_of": now.isoformat(timespec="seconds") + "Z"}
        by_name = {view.name: view for view in views}
        with warehouse.transaction() as con:
            for view in views:
                view.table.create(con)
                keys = sql.columns_list(view.entity_columns)
                entities = f"__latest_{view.name}"
                con.execute(
                    f"CREATE OR REPLACE TEMP TABLE {sql.ident(entities)} AS SELECT DISTINCT {keys},"
                    f" {sql.literal(now)} AS {ENTITY_TIMESTAMP} FROM {sql.ident(view.name)} ORDER BY ALL"
                )
                latest = get_training_set(
                    con, entities, [f"{view.name}:{f}" for f in view.features], views=by_name
                ).project(f"* EXCLUDE ({ENTITY_TIMESTAMP})")
                table = f"latest_{view.name}"
                metadata[f"{table}_rows"] = write_whole(con, table, latest.sql_query())
            store = configured_store()
            if store is not None:
                metadata["online_store"] = store.location
                for view in views:
                    written, ignored = write_newest_rows(con, store, view, now)
                    metadata[f"online_{view.name}_rows_written"] = written
                    metadata[f"online_{view.name}_rows_kept_newer"] = ignored
        context.log.info(", ".join(f"{k}={v}" for k, v in metadata.items()))
        return dg.MaterializeResult(metadata=metadata)

    return _latest


def newest_rows_sql(con, view: FeatureView, now: dt.datetime) -> str:
    """SELECT of each entity's row a lookup at `now` would use: keys, timestamp, features."""
    columns = (*view.entity_columns, view.timestamp_column, *view.features)
    if table_exists(con, frontier_table(view.name)):
        rows = sql.ident(frontier_table(view.name))
    else:
        rows = f"({frontier_rows(view.name, view.entity_columns, view.timestamp_column, view.created_column)})"
    # Along a key's frontier availability and (ts, created) rise together: the newest available is the best.
    return (
        f"SELECT {sql.columns_list(columns)} FROM {rows} WHERE {AVAILABLE} <= {sql.literal(now)}"
        f" QUALIFY row_number() OVER (PARTITION BY {sql.columns_list(view.entity_columns)}"
        f" ORDER BY {AVAILABLE} DESC) = 1"
    )


def write_newest_rows(con, store: RedisOnlineStore, view: FeatureView, now: dt.datetime) -> tuple[int, int]:
    """Write `view`'s newest rows at `now` into `store`, in batches; (rows written, rows Redis
    ignored because it held a newer one)."""
    cursor = con.execute(newest_rows_sql(con, view, now))
    n_keys, features = len(view.entity_columns), view.features
    written = ignored = 0
    while batch := cursor.fetchmany(ONLINE_BATCH_ROWS):
        rows = [
            OnlineRow(
                key=tuple(str(part) for part in row[:n_keys]),
                ts=row[n_keys],
                values=dict(zip(features, row[n_keys + 1 :], strict=True)),
            )
            for row in batch
        ]
        stamps = store.write(view.name, view.ttl, rows)
        kept = sum(stamp is None for stamp in stamps)
        written, ignored = written + len(stamps) - kept, ignored + kept
    return written, ignored
