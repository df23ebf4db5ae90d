"""Contract of the users dimension (a snapshot export)."""

from __future__ import annotations

import ibis.expr.datatypes as dt
from pandera.ibis import Field

from ml_platform.contracts.lineage import LineageColumns


class CleanUsers(LineageColumns):
    """Latest known attributes of each user."""

    user_id: dt.String = Field(nullable=False, unique=True, description="User key.")
    signup_date: dt.Date = Field(nullable=False, description="Day the user signed up (UTC).")
    country: dt.String = Field(nullable=True, str_matches=r"[A-Z]{2}$", description="ISO country code.")
    plan: dt.String = Field(nullable=True, isin=["free", "plus", "pro"], description="Subscription plan.")

    class Config:
        strict = True
