"""Daily batch features per user, from that UTC day's clean events and the users dimension.

Only events of the feature day itself feed a row, and user attributes are joined as they were
on that day (the users history), so a row never sees the future. The table is this contract
plus this SQL; `ml_platform.curated` makes it an asset with its blocking contract check.
"""

from __future__ import annotations

import ibis.expr.datatypes as dt
from pandera.ibis import DataFrameModel, Field

from ml_platform.contracts import personal
from ml_platform.curated import CuratedTable, Read


class UserDailyFeatures(DataFrameModel):
    """Batch features per user and UTC day, computed only from that day's clean events."""

    user_id: dt.String = Field(nullable=False, description="Entity key.", metadata=personal.pseudonymized())
    feature_date: dt.Date = Field(nullable=False, description="UTC day the features describe: the partition.")
    event_count: dt.Int64 = Field(ge=1, description="Events that day.")
    transaction_count: dt.Int64 = Field(ge=0, description="Purchases that day.")
    unique_products: dt.Int64 = Field(ge=0, description="Distinct products touched.")
    daily_spend: dt.Float64 = Field(ge=0.0, description="Sum of purchase amounts.")
    avg_transaction_value: dt.Float64 = Field(nullable=True, ge=0.0, description="Mean purchase amount.")
    max_transaction_value: dt.Float64 = Field(nullable=True, ge=0.0, description="Largest purchase amount.")
    cart_adds: dt.Int64 = Field(ge=0, description="add_to_cart events.")
    primary_device: dt.String = Field(nullable=True, description="Most used device (ties: alphabetical).")
    days_since_signup: dt.Int64 = Field(nullable=True, ge=0, description="feature_date - signup_date.")

    class Config:
        strict = True


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
    -- Floating-point sums depend on the order rows are added in, which varies with how threads
    -- split them. Summed as decimals (exact, so in any order) a re-run writes the same values, to
    -- the last bit. (Adding in event_id order, `sum(amount ORDER BY event_id)`, did the same, but
    -- an ordered aggregate cannot spill to disk: a 6 M-event day ran out of the memory limit.)
    CAST(coalesce(sum(CAST(amount AS DECIMAL(38, 10))) FILTER (WHERE event_type = 'purchase'), 0) AS DOUBLE)
      AS daily_spend,
    avg(CAST(amount AS DECIMAL(38, 10))) FILTER (WHERE event_type = 'purchase') AS avg_transaction_value,
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

TABLE = CuratedTable(
    name="user_daily_features",
    description="Per user and UTC day: activity, spend, cart and device features for ML models.",
    contract=UserDailyFeatures,
    partition_column="feature_date",
    sql=FEATURES_SQL,
    # The day's events, and the users' attributes valid that day: a users snapshot re-requests
    # the days its new versions reach (from the first snapshot day that changed on).
    reads=("clean_events", Read.snapshot("clean_users", 0)),
    entity_columns=("user_id",),
)
