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

# Aggregate the day's events per user first, then join the small per-day result to devices and
# to the users history (a join on 1 M events would do the same work a hundred times over).
FEATURES_SQL = """
WITH events AS (
  SELECT * FROM clean_events WHERE event_date BETWEEN $start AND $end
),
daily AS (
  SELECT
    user_id,
    event_date,
    count(*) AS event_count,
    count(*) FILTER (WHERE event_type = 'purchase') AS transaction_count,
    count(DISTINCT product_id) AS unique_products,
    coalesce(sum(amount) FILTER (WHERE event_type = 'purchase'), 0.0) AS daily_spend,
    avg(amount) FILTER (WHERE event_type = 'purchase') AS avg_transaction_value,
    max(amount) FILTER (WHERE event_type = 'purchase') AS max_transaction_value,
    count(*) FILTER (WHERE event_type = 'add_to_cart') AS cart_adds
  FROM events
  GROUP BY user_id, event_date
),
device_counts AS (
  SELECT user_id, event_date, device_type, count(*) AS uses
  FROM events WHERE device_type IS NOT NULL
  GROUP BY user_id, event_date, device_type
),
primary_devices AS (
  -- Most used device; ties go to the alphabetically first.
  SELECT user_id, event_date, device_type AS primary_device
  FROM device_counts
  QUALIFY row_number() OVER (PARTITION BY user_id, event_date ORDER BY uses DESC, device_type) = 1
)
SELECT
  d.user_id,
  d.event_date AS feature_date,
  d.event_count,
  d.transaction_count,
  d.unique_products,
  d.daily_spend,
  d.avg_transaction_value,
  d.max_transaction_value,
  d.cart_adds,
  p.primary_device,
  CAST(d.event_date - u.signup_date AS BIGINT) AS days_since_signup
FROM daily d
LEFT JOIN primary_devices p USING (user_id, event_date)
-- The user's attributes as they were on the feature day (SCD2 history), never later ones. The
-- open end is a far date rather than `valid_to IS NULL OR ...`: an OR here defeats the hash join.
LEFT JOIN clean_users u ON u.user_id = d.user_id AND d.event_date >= u.valid_from
  AND d.event_date < coalesce(u.valid_to, DATE '9999-12-31')
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
