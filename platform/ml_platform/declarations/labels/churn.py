"""Churn: a customer who makes no purchase in the 30 days from the as-of day on.

One row per customer (a user with a purchase before the as-of day) and as-of day D: `churned`
when the user has no purchase event on days D … D+29. Written once the data of those days has
settled (events land up to 3 days late), so the partition of D fills on day D+33.
"""

from __future__ import annotations

import ibis.expr.datatypes as ibis_dt
from pandera.ibis import DataFrameModel, Field

from ml_platform.contracts import personal
from ml_platform.contracts.lineage import UtcTimestamp
from ml_platform.curated import Label, Read


class ChurnLabel(DataFrameModel):
    """Per customer and as-of day: did they stop buying for the next 30 days?"""

    user_id: ibis_dt.String = Field(nullable=False, description="Entity key.", metadata=personal.pseudonymized())
    as_of_date: ibis_dt.Date = Field(nullable=False, description="The day the label is as of (UTC): the partition.")
    event_timestamp: UtcTimestamp = Field(description="Midnight UTC starting as_of_date: the training row's time.")
    churned: ibis_dt.Boolean = Field(description="No purchase on as_of_date or the 29 days after it.")
    days_to_next_purchase: ibis_dt.Int64 = Field(
        nullable=True,
        ge=0,
        le=29,
        description="Days from as_of_date to the next purchase in the horizon; null if none.",
    )

    class Config:
        strict = True


# Purchases are reduced to distinct user-days first (small), then each (customer, day) pair
# looks for the first purchase day in its horizon with one range join.
SQL = """
WITH as_of_days AS (
  SELECT CAST(d AS DATE) AS as_of_date FROM generate_series($start, $end, INTERVAL 1 DAY) t(d)
),
purchase_days AS (
  SELECT DISTINCT user_id, event_date FROM clean_events
  WHERE event_type = 'purchase' AND event_date < $end + $horizon_days
),
customers AS (
  SELECT user_id, min(event_date) AS first_purchase FROM purchase_days GROUP BY user_id
)
SELECT c.user_id, d.as_of_date, CAST(d.as_of_date AS TIMESTAMP) AS event_timestamp,
       min(p.event_date) IS NULL AS churned,
       CAST(min(p.event_date) - d.as_of_date AS BIGINT) AS days_to_next_purchase
FROM as_of_days d
JOIN customers c ON c.first_purchase < d.as_of_date
LEFT JOIN purchase_days p
  ON p.user_id = c.user_id AND p.event_date >= d.as_of_date AND p.event_date < d.as_of_date + $horizon_days
GROUP BY c.user_id, d.as_of_date
"""

LABEL = Label(
    name="churn_label",
    description=(
        "Per customer and UTC day: churned when no purchase follows on that day or the 29 after it. "
        "Written once those days have settled (day + 33)."
    ),
    contract=ChurnLabel,
    partition_column="as_of_date",
    sql=SQL,
    # Who is a customer reads every purchase day before the partition's; the outcome its 30 days.
    reads=(Read.days("clean_events", None, 29),),
    # A file landed on D + 33 (or later) makes D final.
    clock_table="raw_events",
    entity_columns=("user_id",),
    timestamp_column="event_timestamp",
    label_column="churned",
    horizon_days=30,
    # The events source's late tolerance (sources/events.py).
    settle_days=3,
)
