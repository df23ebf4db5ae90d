"""Contracts of the dimension snapshots (users, products), each row a version with its validity."""

from __future__ import annotations

import ibis.expr.datatypes as dt
from pandera.ibis import Field

from ml_platform.contracts.lineage import HistoryColumns, LineageColumns


class CleanUsers(LineageColumns, HistoryColumns):
    """Every version of each user's attributes, as seen in the CRM's daily snapshots."""

    user_id: dt.String = Field(nullable=False, description="User key.")
    signup_date: dt.Date = Field(nullable=False, description="Day the user signed up (UTC).")
    country: dt.String = Field(nullable=True, str_matches=r"[A-Z]{2}$", description="ISO country code.")
    plan: dt.String = Field(nullable=True, isin=["free", "plus", "pro"], description="Subscription plan.")

    class Config:
        strict = True


class CleanProducts(LineageColumns, HistoryColumns):
    """Every version of each product's catalogue attributes, from the daily catalogue snapshots."""

    product_id: dt.String = Field(nullable=False, str_matches=r"P\d{4}$", description="Product key.")
    category: dt.String = Field(
        isin=["electronics", "home", "fashion", "sports", "books", "toys"], description="Catalogue category."
    )
    price: dt.Float64 = Field(ge=0.0, le=100_000.0, description="List price.")
    active: dt.Boolean = Field(description="Whether the product can be bought.")

    class Config:
        strict = True
