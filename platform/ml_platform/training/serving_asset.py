"""The serving snapshot: every feature view's latest vector per entity, as tables to look up.

`latest_<view>` holds one row per entity the view knows, with each feature as
`get_online_features` returns it now (the training definitions; values past the view's TTL
are null). It is rebuilt when a feature view updates; a service reads these small tables, or
calls `get_online_features` for a point lookup.
"""

# No `from __future__ import annotations`: Dagster reads the `context` annotation at definition time.
import datetime as dt

import dagster as dg

from ml_platform.automation import on_new_input
from ml_platform.curated import FeatureView
from ml_platform.training import ENTITY_TIMESTAMP, get_training_set
from ml_platform.warehouse import WAREHOUSE_POOL, Warehouse, sql


def serving_asset(views: list[FeatureView]) -> dg.AssetsDefinition:
    @dg.asset(
        name="latest_features",
        group_name="serving",
        kinds={"duckdb"},
        deps=[view.name for view in views],
        pool=WAREHOUSE_POOL,
        description="Each entity's current feature vector per feature view (tables latest_<view>), for serving.",
        automation_condition=on_new_input(),
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
                con.execute(f"DROP TABLE IF EXISTS {sql.ident(table)}")
                latest.create(table)
                metadata[f"{table}_rows"] = con.execute(f"SELECT count(*) FROM {sql.ident(table)}").fetchone()[0]
        context.log.info(", ".join(f"{k}={v}" for k, v in metadata.items()))
        return dg.MaterializeResult(metadata=metadata)

    return _latest
