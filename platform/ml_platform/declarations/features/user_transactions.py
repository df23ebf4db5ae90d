"""Payment features per user as of each UTC day, from the payments database (`clean_transactions`).

A row for user U as of day D uses only U's transactions created strictly before D (creation days
before D, UTC); the 7- and 30-day windows are the 7 and 30 days before D (D - 7 … D - 1, D - 30 …
D - 1). Every user with a transaction created before D gets a row, quiet lately or not (zeros);
soft-deleted transactions are not in the clean table, so they count nowhere.

Status is the latest one: `clean_transactions` keeps the newest version of each transaction, so a
payment refunded after the fact counts as refunded in every row recomputed after the refund, and
the row's `created_at` says so. `created_at` is when the newest version among the row's inputs
had landed: a version lands when the source changes it (`updated_at`; the change sensor extracts
it within minutes), and like user_activity the row claims the end of that UTC day,
`CAST(CAST(max(updated_at) AS DATE) + 1 AS TIMESTAMP)`, over all of U's transactions before D. A
refund on day R thus moves the recomputed rows' `created_at` to R + 1, and point-in-time retrieval
never shows the refund to entity rows before then. (The raw partition, `landing_date`, is the
creation day for this source, not the day a version arrived, so it cannot say this.) Limit: a soft
delete leaves no row in the clean table, so the rows recomputed without the deleted payment
cannot date the deletion; their `created_at` is that of the payments that remain.

Currencies are never added up: completed amounts are summed per currency (EUR, USD, GBP: the
contract of `clean_transactions` admits no other; a new currency needs its columns here). Sums
run in DECIMAL(18, 2) so that the window differences of running sums are exact.

`days_since_last_completed` and the running totals look at all history before D, and a partition
declares it reads that (`reads`: every creation day before D). Automation recomputes every later
day within the latest eight days; a change to an older payment reaches the rows before that when
they are recomputed (a backfill), and `python -m ml_platform audit` names them until then.
"""

from __future__ import annotations

import datetime as dt

import ibis.expr.datatypes as ibis_dt
from pandera.ibis import DataFrameModel, Field

from ml_platform.contracts import personal
from ml_platform.contracts.lineage import UtcTimestamp
from ml_platform.curated import FeatureView, Read


def _amount(currency: str, days: int):
    return Field(
        ge=0.0, description=f"Amount of completed transactions in {currency} created in the {days} days before as_of."
    )


class UserTransactions(DataFrameModel):
    """Per user and as-of day: payments created before that day, with their latest status."""

    user_id: ibis_dt.String = Field(nullable=False, description="Entity key.", metadata=personal.pseudonymized())
    as_of_date: ibis_dt.Date = Field(nullable=False, description="The day the row is as of (UTC): the partition.")
    as_of: UtcTimestamp = Field(description="Midnight UTC starting as_of_date: the features' timestamp.")
    created_at: UtcTimestamp = Field(
        description="When the newest input version had landed: end of the UTC day of its updated_at."
    )
    completed_count_7d: ibis_dt.Int64 = Field(ge=0, description="Completed transactions in the 7 days before as_of.")
    completed_count_30d: ibis_dt.Int64 = Field(ge=0, description="Completed transactions in the 30 days before as_of.")
    completed_eur_7d: ibis_dt.Float64 = _amount("EUR", 7)
    completed_usd_7d: ibis_dt.Float64 = _amount("USD", 7)
    completed_gbp_7d: ibis_dt.Float64 = _amount("GBP", 7)
    completed_eur_30d: ibis_dt.Float64 = _amount("EUR", 30)
    completed_usd_30d: ibis_dt.Float64 = _amount("USD", 30)
    completed_gbp_30d: ibis_dt.Float64 = _amount("GBP", 30)
    refunded_count_30d: ibis_dt.Int64 = Field(ge=0, description="Refunded transactions in the 30 days before as_of.")
    failed_count_30d: ibis_dt.Int64 = Field(ge=0, description="Failed transactions in the 30 days before as_of.")
    transactions_30d: ibis_dt.Int64 = Field(ge=0, description="Transactions of any status in the 30 days before as_of.")
    refund_rate_30d: ibis_dt.Float64 = Field(
        nullable=True, ge=0.0, le=1.0, description="refunded / (completed + refunded) over 30 days; null when none."
    )
    failure_rate_30d: ibis_dt.Float64 = Field(
        nullable=True, ge=0.0, le=1.0, description="failed / transactions_30d; null when none."
    )
    days_since_last_completed: ibis_dt.Int64 = Field(
        nullable=True, ge=1, description="as_of_date minus the last completed transaction's day; null without one."
    )

    class Config:
        strict = True


# Per user and creation day first (small), then running totals per user: a value as of D is the
# running total of the last day before D (ASOF join), minus the total before D - 7 (or D - 30).
SQL = """
WITH as_of_days AS (
  SELECT CAST(d AS DATE) AS as_of_date FROM generate_series($start, $end, INTERVAL 1 DAY) t(d)
),
daily AS (
  SELECT user_id, transaction_date AS day,
         count(*) AS transactions,
         count(*) FILTER (WHERE status = 'completed') AS completed,
         count(*) FILTER (WHERE status = 'refunded') AS refunded,
         count(*) FILTER (WHERE status = 'failed') AS failed,
         coalesce(sum(CAST(amount AS DECIMAL(18, 2))) FILTER (WHERE status = 'completed' AND currency = 'EUR'), 0) AS eur,
         coalesce(sum(CAST(amount AS DECIMAL(18, 2))) FILTER (WHERE status = 'completed' AND currency = 'USD'), 0) AS usd,
         coalesce(sum(CAST(amount AS DECIMAL(18, 2))) FILTER (WHERE status = 'completed' AND currency = 'GBP'), 0) AS gbp,
         max(CAST(updated_at AS DATE)) AS changed
  FROM clean_transactions WHERE transaction_date < $end
  GROUP BY 1, 2
),
running AS (
  SELECT user_id, day,
         sum(transactions) OVER w AS transactions, sum(completed) OVER w AS completed,
         sum(refunded) OVER w AS refunded, sum(failed) OVER w AS failed,
         sum(eur) OVER w AS eur, sum(usd) OVER w AS usd, sum(gbp) OVER w AS gbp,
         max(CASE WHEN completed > 0 THEN day END) OVER w AS last_completed,
         max(changed) OVER w AS changed
  FROM daily WINDOW w AS (PARTITION BY user_id ORDER BY day ROWS UNBOUNDED PRECEDING)
),
users_days AS (
  SELECT d.as_of_date, u.user_id
  FROM as_of_days d JOIN (SELECT user_id, min(day) AS first_day FROM daily GROUP BY 1) u
    ON u.first_day < d.as_of_date
),
totals AS (
  SELECT ud.as_of_date, ud.user_id, n.last_completed, n.changed,
         n.completed - coalesce(w7.completed, 0) AS completed_7d,
         n.completed - coalesce(w30.completed, 0) AS completed_30d,
         n.refunded - coalesce(w30.refunded, 0) AS refunded_30d,
         n.failed - coalesce(w30.failed, 0) AS failed_30d,
         n.transactions - coalesce(w30.transactions, 0) AS transactions_30d,
         n.eur - coalesce(w7.eur, 0) AS eur_7d, n.usd - coalesce(w7.usd, 0) AS usd_7d,
         n.gbp - coalesce(w7.gbp, 0) AS gbp_7d,
         n.eur - coalesce(w30.eur, 0) AS eur_30d, n.usd - coalesce(w30.usd, 0) AS usd_30d,
         n.gbp - coalesce(w30.gbp, 0) AS gbp_30d
  FROM users_days ud
  ASOF JOIN running n ON n.user_id = ud.user_id AND ud.as_of_date > n.day
  ASOF LEFT JOIN running w7 ON w7.user_id = ud.user_id AND ud.as_of_date - 7 > w7.day
  ASOF LEFT JOIN running w30 ON w30.user_id = ud.user_id AND ud.as_of_date - 30 > w30.day
)
SELECT user_id, as_of_date, CAST(as_of_date AS TIMESTAMP) AS as_of,
       CAST(changed + 1 AS TIMESTAMP) AS created_at,
       CAST(completed_7d AS BIGINT) AS completed_count_7d, CAST(completed_30d AS BIGINT) AS completed_count_30d,
       CAST(eur_7d AS DOUBLE) AS completed_eur_7d, CAST(usd_7d AS DOUBLE) AS completed_usd_7d,
       CAST(gbp_7d AS DOUBLE) AS completed_gbp_7d,
       CAST(eur_30d AS DOUBLE) AS completed_eur_30d, CAST(usd_30d AS DOUBLE) AS completed_usd_30d,
       CAST(gbp_30d AS DOUBLE) AS completed_gbp_30d,
       CAST(refunded_30d AS BIGINT) AS refunded_count_30d, CAST(failed_30d AS BIGINT) AS failed_count_30d,
       CAST(transactions_30d AS BIGINT) AS transactions_30d,
       CASE WHEN completed_30d + refunded_30d > 0
            THEN refunded_30d / (completed_30d + refunded_30d) END AS refund_rate_30d,
       CASE WHEN transactions_30d > 0 THEN failed_30d / transactions_30d END AS failure_rate_30d,
       CAST(as_of_date - last_completed AS BIGINT) AS days_since_last_completed
FROM totals
"""

TABLE = FeatureView(
    name="user_transactions",
    description=(
        "Per user and UTC day: completed payments (count, and amount per currency) over 7 and 30 days, "
        "refunded and failed counts and rates over 30 days, days since the last completed payment, "
        "from payments created before the day, each with its latest status."
    ),
    contract=UserTransactions,
    partition_column="as_of_date",
    sql=SQL,
    # Running totals and days_since_last_completed read every creation day before the partition's.
    reads=(Read.days("clean_transactions", None, -1),),
    # Its windowed features fill up over 30 days (lifetime values grow for ever).
    drift_warmup_days=30,
    entity_columns=("user_id",),
    timestamp_column="as_of",
    created_column="created_at",
    # A daily view: one missing day is tolerated, an older value is too stale to use.
    ttl=dt.timedelta(days=2),
)
