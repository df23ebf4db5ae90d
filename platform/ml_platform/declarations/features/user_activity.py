"""User activity as of each UTC day: what was known about a user at midnight, before the day began.

A row for user U as of day D uses only clean events of days before D, and U's plan and country
from the newest users snapshot landed before D (the users history), so nothing from D or later
leaks in. Every user with an event before D gets a row, active lately or not (churn models need
the quiet ones); users known only from the snapshots get none.

`created_at` is when the row's inputs had all landed: the end of the newest landing day among the
events and the snapshot it used. A late event (landed after D) recomputes the rows it changes,
and their `created_at` moves past D: point-in-time retrieval then never shows them to entity
rows before that landing.

Lifetime values cover all history before D, and that is what a partition declares it reads
(`reads`: every event day before D; the users history as of D - 1): a late event recomputes every
later day automation keeps current (the latest eight: data is at most a week late). An older
change is recomputed by a backfill, and `python -m ml_platform audit` names the partitions it left
behind.
"""

from __future__ import annotations

import datetime as dt

import ibis.expr.datatypes as ibis_dt
from pandera.ibis import DataFrameModel, Field

from ml_platform.contracts import personal
from ml_platform.contracts.lineage import UtcTimestamp
from ml_platform.curated import FeatureView, Read
from ml_platform.point_in_time.temporal import TemporalFeature


class UserActivity(DataFrameModel):
    """Per user and as-of day: activity and spend before that day, attributes as they were."""

    user_id: ibis_dt.String = Field(nullable=False, description="Entity key.", metadata=personal.pseudonymized())
    as_of_date: ibis_dt.Date = Field(nullable=False, description="The day the row is as of (UTC): the partition.")
    as_of: UtcTimestamp = Field(description="Midnight UTC starting as_of_date: the features' timestamp.")
    created_at: UtcTimestamp = Field(description="When all inputs had landed (end of the newest landing day).")
    lifetime_value: ibis_dt.Float64 = Field(ge=0.0, description="Sum of purchase amounts before as_of.")
    purchases: ibis_dt.Int64 = Field(ge=0, description="Purchases before as_of.")
    avg_order_value: ibis_dt.Float64 = Field(nullable=True, ge=0.0, description="lifetime_value / purchases.")
    days_since_last_purchase: ibis_dt.Int64 = Field(
        nullable=True, ge=1, description="as_of_date minus the last purchase day; null without purchases."
    )
    spend_7d: ibis_dt.Float64 = Field(ge=0.0, description="Purchase amounts in the 7 days before as_of.")
    spend_30d: ibis_dt.Float64 = Field(ge=0.0, description="Purchase amounts in the 30 days before as_of.")
    events_7d: ibis_dt.Int64 = Field(ge=0, description="Events in the 7 days before as_of.")
    events_30d: ibis_dt.Int64 = Field(ge=0, description="Events in the 30 days before as_of.")
    sessions_30d: ibis_dt.Int64 = Field(ge=0, description="Distinct sessions in the 30 days before as_of.")
    plan: ibis_dt.String = Field(nullable=True, description="Plan in the newest users snapshot before as_of.")
    country: ibis_dt.String = Field(nullable=True, description="Country in that snapshot.")

    class Config:
        strict = True


# Per user and event day first (small), then cumulative sums per user: a value as of D is the
# cumulative total of the last event day before D, found with ASOF joins, minus the total as of
# D - 7 (or D - 30) for the windows. Nothing is joined row by row over the whole history. Amounts
# are summed as decimals, exactly: a floating-point sum depends on the order rows are added in
# (which varies with how threads split them), and two builds differed in the last bit (297.2 vs
# 297.20000000000005); the running totals and their differences are exact too.
SQL = """
WITH as_of_days AS (
  SELECT CAST(d AS DATE) AS as_of_date FROM generate_series($start, $end, INTERVAL 1 DAY) t(d)
),
daily AS (
  SELECT user_id, event_date,
         count(*) AS events,
         count(*) FILTER (WHERE event_type = 'purchase') AS purchases,
         coalesce(sum(CAST(amount AS DECIMAL(38, 10))) FILTER (WHERE event_type = 'purchase'), 0) AS spend,
         max(landing_date) AS landed
  FROM clean_events WHERE event_date < $end
  GROUP BY user_id, event_date
),
running AS (
  SELECT user_id, event_date,
         sum(events) OVER w AS events, sum(purchases) OVER w AS purchases, sum(spend) OVER w AS spend,
         max(CASE WHEN purchases > 0 THEN event_date END) OVER w AS last_purchase_date,
         max(landed) OVER w AS landed
  FROM daily WINDOW w AS (PARTITION BY user_id ORDER BY event_date ROWS UNBOUNDED PRECEDING)
),
users_days AS (
  SELECT d.as_of_date, u.user_id
  FROM as_of_days d JOIN (SELECT user_id, min(event_date) AS first_day FROM daily GROUP BY 1) u
    ON u.first_day < d.as_of_date
),
totals AS (
  SELECT ud.as_of_date, ud.user_id, now_.events, now_.purchases, now_.spend, now_.last_purchase_date,
         now_.landed, coalesce(w7.events, 0) AS events_before_7d, coalesce(w7.spend, 0) AS spend_before_7d,
         coalesce(w30.events, 0) AS events_before_30d, coalesce(w30.spend, 0) AS spend_before_30d
  FROM users_days ud
  ASOF JOIN running now_ ON now_.user_id = ud.user_id AND ud.as_of_date > now_.event_date
  ASOF LEFT JOIN running w7 ON w7.user_id = ud.user_id AND ud.as_of_date - 7 > w7.event_date
  ASOF LEFT JOIN running w30 ON w30.user_id = ud.user_id AND ud.as_of_date - 30 > w30.event_date
),
sessions AS (
  -- Distinct counts do not add up across days, so each as-of day counts its own 30 days of
  -- (user, session) pairs: the one part whose work grows with the window (30 x the events).
  SELECT d.as_of_date, e.user_id, count(DISTINCT e.session_id) AS sessions_30d
  FROM as_of_days d JOIN clean_events e
    ON e.event_date >= d.as_of_date - 30 AND e.event_date < d.as_of_date
  WHERE e.session_id IS NOT NULL
  GROUP BY 1, 2
),
attributes AS (
  -- The version of the newest snapshot that landed before the as-of day (valid on the day before).
  SELECT t.as_of_date, t.user_id, u.plan, u.country, u.valid_from
  FROM totals t JOIN clean_users u
    ON u.user_id = t.user_id AND u.valid_from < t.as_of_date
   AND t.as_of_date - 1 < coalesce(u.valid_to, DATE '9999-12-31')
)
SELECT t.user_id, t.as_of_date, CAST(t.as_of_date AS TIMESTAMP) AS as_of,
       CAST(greatest(t.landed, a.valid_from) + 1 AS TIMESTAMP) AS created_at,
       CAST(t.spend AS DOUBLE) AS lifetime_value, t.purchases,
       CASE WHEN t.purchases > 0 THEN CAST(t.spend / t.purchases AS DOUBLE) END AS avg_order_value,
       CAST(t.as_of_date - t.last_purchase_date AS BIGINT) AS days_since_last_purchase,
       CAST(t.spend - t.spend_before_7d AS DOUBLE) AS spend_7d, CAST(t.spend - t.spend_before_30d AS DOUBLE) AS spend_30d,
       t.events - t.events_before_7d AS events_7d, t.events - t.events_before_30d AS events_30d,
       coalesce(s.sessions_30d, 0) AS sessions_30d, a.plan, a.country
FROM totals t
LEFT JOIN sessions s USING (as_of_date, user_id)
LEFT JOIN attributes a USING (as_of_date, user_id)
"""


def _from_events(name: str, aggregate: str, days: int) -> TemporalFeature:
    # Availability is `ingested_at`, when the raw layer ingested the event's file: the only
    # per-row time the platform itself observed (landing_date is a folder name, a day at best).
    # Re-ingesting a file (a re-run of its landing day) moves it later, so an event can only look
    # available later than it was, never earlier: conservative. History ingested in one backfill
    # is available from that backfill on, so temporal values of older entity rows leave it out.
    return TemporalFeature(
        name=name,
        source_table="clean_events",
        timestamp_column="event_time",
        available_column="ingested_at",
        aggregate=aggregate,
        window=dt.timedelta(days=days),
    )


# The windowed features as of an entity row's exact time, aggregated like SQL above (0.0 spend
# and 0 events when the window is empty), over [t - window, t) instead of [midnight - window, midnight).
SPEND = "coalesce(CAST(sum(CAST(amount AS DECIMAL(38, 10))) FILTER (WHERE event_type = 'purchase') AS DOUBLE), 0.0)"
TEMPORAL = (
    _from_events("spend_7d", SPEND, 7),
    _from_events("spend_30d", SPEND, 30),
    _from_events("events_7d", "count(*)", 7),
    _from_events("events_30d", "count(*)", 30),
    _from_events("sessions_30d", "count(DISTINCT session_id)", 30),
)

TABLE = FeatureView(
    name="user_activity",
    description=(
        "Per user and UTC day: lifetime value, purchases, average order value, days since the last "
        "purchase, 7- and 30-day spend and events, 30-day sessions, and plan and country as they were, "
        "all as known at midnight before the day (no data of the day itself or later)."
    ),
    contract=UserActivity,
    partition_column="as_of_date",
    sql=SQL,
    # Lifetime values read every event day before the partition's; attributes are the versions
    # valid the day before it.
    reads=(Read.days("clean_events", None, -1), Read.snapshot("clean_users", -1)),
    # Its windowed features fill up over 30 days (lifetime values grow for ever).
    drift_warmup_days=30,
    entity_columns=("user_id",),
    timestamp_column="as_of",
    created_column="created_at",
    # A daily view: one missing day is tolerated, an older value is too stale to use.
    ttl=dt.timedelta(days=2),
    temporal=TEMPORAL,
)
