"""Users dimension: the CRM exports a daily snapshot of all users as CSV; the clean table keeps every version."""

from __future__ import annotations

import ibis.expr.datatypes as dt
from pandera.ibis import Field

from ml_platform.contracts import personal
from ml_platform.contracts.lineage import HistoryColumns, LineageColumns
from ml_platform.ingestion.files import FileSourceSpec


class CleanUsers(LineageColumns, HistoryColumns):
    """Every version of each user's attributes, as seen in the CRM's daily snapshots."""

    user_id: dt.String = Field(nullable=False, description="User key.", metadata=personal.pseudonymized())
    signup_date: dt.Date = Field(nullable=False, description="Day the user signed up (UTC).")
    country: dt.String = Field(nullable=True, str_matches=r"[A-Z]{2}$", description="ISO country code.")
    plan: dt.String = Field(nullable=True, isin=["free", "plus", "pro"], description="Subscription plan.")

    class Config:
        strict = True


SPEC = FileSourceSpec(
    name="users",
    description="Daily snapshot export of the users dimension from the CRM.",
    owner="team:crm",
    contract=CleanUsers,
    key_columns=("user_id",),
    formats=("csv",),
    schema_versions={"v1": ("user_id", "signup_date", "country", "plan")},
    schema_policy="add_only",
    max_quarantine_fraction=0.01,
)
