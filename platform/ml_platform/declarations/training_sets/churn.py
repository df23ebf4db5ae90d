"""Churn: will a customer stop buying for 30 days? User activity as known at midnight before the day."""

from __future__ import annotations

from ml_platform.training import LeakyVariant, TrainingSet

TRAINING_SET = TrainingSet(
    name="churn",
    description="Customers as of each day (churn_label) with their activity as known then, split by time.",
    label="churn_label",
    features=(
        "user_activity:lifetime_value",
        "user_activity:purchases",
        "user_activity:avg_order_value",
        "user_activity:days_since_last_purchase",
        "user_activity:spend_7d",
        "user_activity:spend_30d",
        "user_activity:events_7d",
        "user_activity:events_30d",
        "user_activity:sessions_30d",
        "user_activity:plan",
        "user_activity:country",
        # Payments (the PostgreSQL source); null where it is not configured.
        "user_transactions:completed_count_30d",
        "user_transactions:refund_rate_30d",
    ),
    validation_days=7,
    leaky=LeakyVariant(
        description=(
            "lifetime value and purchases summed over all history (the future of every row included), "
            "scaler fitted on every row, random split."
        ),
        sql="""
            SELECT user_id,
                   coalesce(sum(amount) FILTER (WHERE event_type = 'purchase'), 0.0) AS lifetime_value_all_time,
                   count(*) FILTER (WHERE event_type = 'purchase') AS purchases_all_time
            FROM clean_events GROUP BY user_id
        """,
    ),
)
