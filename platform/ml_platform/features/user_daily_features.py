"""Daily batch features per user, from that UTC day's clean events and the users dimension.

Only events of the feature day itself feed a row, and user attributes are joined as they were
on that day (the users history), so a row never sees the future.
"""


import dagster as dg

from ml_platform.automation import on_upstream_update
from ml_platform.contract_check import contract_check_spec, evaluate_contract
from ml_platform.contracts import table_contract as tc
from ml_platform.contracts.clickstream import UserDailyFeatures
from ml_platform.partitions import daily_partitions, run_window, window_label
from ml_platform.warehouse import Warehouse

TABLE = "user_daily_features"
KEY = dg.AssetKey(TABLE)
EVENTS = dg.AssetKey("clean_events")
USERS = dg.AssetKey("clean_users")
PARTITIONS = daily_partitions()

FEATURES_SQL = """
WITH events AS (
  SELECT * FROM clean_events WHERE event_date BETWEEN $start AND $end
),
device_rank AS (
  SELECT user_id, event_date, device_type,
         row_number() OVER (PARTITION BY user_id, event_date ORDER BY count(*) DESC, device_type) AS rank
  FROM events WHERE device_type IS NOT NULL
  GROUP BY user_id, event_date, device_type
)
SELECT
  e.user_id,
  e.event_date AS feature_date,
  count(*) AS event_count,
  count(*) FILTER (WHERE e.event_type = 'purchase') AS transaction_count,
  count(DISTINCT e.product_id) AS unique_products,
  coalesce(sum(e.amount) FILTER (WHERE e.event_type = 'purchase'), 0.0) AS daily_spend,
  avg(e.amount) FILTER (WHERE e.event_type = 'purchase') AS avg_transaction_value,
  max(e.amount) FILTER (WHERE e.event_type = 'purchase') AS max_transaction_value,
  count(*) FILTER (WHERE e.event_type = 'add_to_cart') AS cart_adds,
  any_value(d.device_type) AS primary_device,
  CAST(any_value(e.event_date - u.signup_date) AS BIGINT) AS days_since_signup
FROM events e
LEFT JOIN device_rank d ON d.user_id = e.user_id AND d.event_date = e.event_date AND d.rank = 1
-- The user's attributes as they were on the feature day (SCD2 history), never later ones.
LEFT JOIN clean_users u ON u.user_id = e.user_id AND u.valid_from <= e.event_date
  AND (u.valid_to IS NULL OR e.event_date < u.valid_to)
GROUP BY e.user_id, e.event_date
"""


@dg.asset(
    name=TABLE,
    group_name="features",
    kinds={"duckdb", "pandera"},
    deps=[EVENTS, USERS],
    partitions_def=PARTITIONS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="duckdb",
    owners=["team:ml-platform"],
    description="Per user and UTC day: activity, spend, cart and device features for ML models.",
    metadata={"dagster/column_schema": tc.table_schema(UserDailyFeatures), "contract": UserDailyFeatures.__name__},
    check_specs=[contract_check_spec(KEY, UserDailyFeatures, PARTITIONS)],
    # The users snapshot gates (must exist, checks passed) but does not re-trigger every day.
    automation_condition=on_upstream_update(ignore=dg.AssetSelection.assets(USERS)),
)
def user_daily_features(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    start, end = run_window(context)
    cols = ", ".join(tc.quote(c.name) for c in tc.columns(UserDailyFeatures))
    with warehouse.transaction() as con:
        con.execute(tc.create_table_sql(UserDailyFeatures, TABLE))
        con.execute(f"DELETE FROM {TABLE} WHERE feature_date BETWEEN ? AND ?", [start, end])
        con.execute(f"INSERT INTO {TABLE} ({cols}) SELECT {cols} FROM ({FEATURES_SQL})", {"start": start, "end": end})
        rows, users = con.execute(
            f"SELECT count(*), count(DISTINCT user_id) FROM {TABLE} WHERE feature_date BETWEEN ? AND ?", [start, end]
        ).fetchone()
    check = evaluate_contract(
        warehouse, UserDailyFeatures, f"SELECT * FROM {TABLE} WHERE feature_date BETWEEN DATE '{start}' AND DATE '{end}'"
    )
    context.log.info(f"{TABLE} {window_label((start, end))}: {rows} rows")
    return dg.MaterializeResult(
        metadata={"dagster/row_count": rows, "users": users}, check_results=[check]
    )
