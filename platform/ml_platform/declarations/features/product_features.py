"""Product features as of each UTC day: the catalogue as it was known at midnight, before the day began.

A row for product P as of day D comes from the products history (`clean_products`, SCD-2 from
the daily catalogue snapshots): P's version in the newest snapshot landed before D, i.e. the
version valid on D - 1 (`valid_from <= D - 1 < valid_to`), so a snapshot landing on D (or later)
never reaches D's row. Products in that snapshot get a row, deactivated ones too (`active` is
false); a product missing from it (dropped from the catalogue, or not listed yet) gets none.

The 7-day comparison uses the same rule seven days earlier: the price as of D - 7 is the version
valid on D - 8. It is null, with both changes, when P was not in the catalogue then.

`created_at` is when the row's inputs had landed: the end of the first snapshot day of the version
used (the version of D - 8, the older one, landed no later). Rows whose version has not changed
keep the `created_at` of the snapshot that introduced it, like the attributes of user_activity.

Automation: `clean_products` is unpartitioned and rebuilt from every snapshot at each daily
refresh, so any refresh counts as an update of every partition's input. A snapshot of day S can
only change the rows of the days after S (where it is the newest snapshot before the day),
and the latest partition that exists is today: a snapshot of today changes no existing day, one
of yesterday landed after midnight changes today. So automation keeps only the latest day
current (`recent_days=1`): each refresh (re)builds today's row, which is also how each day's
partition gets built once it exists. Older days (a day without any refresh, a snapshot replayed
for a day in the past) are backfilled, one run per range.
"""

from __future__ import annotations

import datetime as dt

import ibis.expr.datatypes as ibis_dt
from pandera.ibis import DataFrameModel, Field

from ml_platform.contracts.lineage import UtcTimestamp
from ml_platform.curated import FeatureView, Read


class ProductFeatures(DataFrameModel):
    """Per product and as-of day: catalogue attributes as they were, and the price 7 days earlier."""

    product_id: ibis_dt.String = Field(nullable=False, str_matches=r"P\d{4}$", description="Entity key.")
    as_of_date: ibis_dt.Date = Field(nullable=False, description="The day the row is as of (UTC): the partition.")
    as_of: UtcTimestamp = Field(description="Midnight UTC starting as_of_date: the features' timestamp.")
    created_at: UtcTimestamp = Field(
        description="When the inputs had landed: end of the first snapshot day of the version used."
    )
    category: ibis_dt.String = Field(description="Category in the newest snapshot landed before as_of.")
    price: ibis_dt.Float64 = Field(ge=0.0, description="List price in that snapshot.")
    active: ibis_dt.Boolean = Field(description="Whether the product could be bought, in that snapshot.")
    price_7d_ago: ibis_dt.Float64 = Field(
        nullable=True, ge=0.0, description="Price as of as_of_date - 7 (same rule); null when not listed then."
    )
    price_change_7d: ibis_dt.Float64 = Field(nullable=True, description="price - price_7d_ago.")
    price_change_7d_pct: ibis_dt.Float64 = Field(
        nullable=True, ge=-1.0, description="price_change_7d / price_7d_ago; null when that price is null or 0."
    )

    class Config:
        strict = True


# Two range joins of the as-of days with the versions: the one valid on D - 1 and the one valid on
# D - 8. Versions are per change, not per day, so both joins stay small.
SQL = """
WITH as_of_days AS (
  SELECT CAST(d AS DATE) AS as_of_date FROM generate_series($start, $end, INTERVAL 1 DAY) t(d)
),
current_versions AS (
  SELECT d.as_of_date, p.product_id, p.category, p.price, p.active, p.valid_from
  FROM as_of_days d JOIN clean_products p
    ON p.valid_from < d.as_of_date AND d.as_of_date - 1 < coalesce(p.valid_to, DATE '9999-12-31')
)
SELECT c.product_id, c.as_of_date, CAST(c.as_of_date AS TIMESTAMP) AS as_of,
       CAST(c.valid_from + 1 AS TIMESTAMP) AS created_at,
       c.category, c.price, c.active,
       w.price AS price_7d_ago,
       c.price - w.price AS price_change_7d,
       CASE WHEN w.price > 0 THEN (c.price - w.price) / w.price END AS price_change_7d_pct
FROM current_versions c
LEFT JOIN clean_products w
  ON w.product_id = c.product_id AND w.valid_from < c.as_of_date - 7
 AND c.as_of_date - 8 < coalesce(w.valid_to, DATE '9999-12-31')
"""

TABLE = FeatureView(
    name="product_features",
    description=(
        "Per product and UTC day: category, price and availability in the newest catalogue snapshot "
        "landed before the day, the price 7 days earlier and its change (absolute and relative)."
    ),
    contract=ProductFeatures,
    partition_column="as_of_date",
    sql=SQL,
    # The versions valid the day before and eight days before; a refresh is kept current for the
    # latest day only (see above).
    reads=(Read.snapshot("clean_products", -1, -8),),
    recent_days=1,
    entity_columns=("product_id",),
    timestamp_column="as_of",
    created_column="created_at",
    # A daily view: one missing day is tolerated, an older value is too stale to use.
    ttl=dt.timedelta(days=2),
)
