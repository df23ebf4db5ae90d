"""Users dimension: the CRM exports a daily snapshot of all users as CSV."""

from ml_platform.contracts.dimensions import CleanUsers
from ml_platform.sources.spec import FileSourceSpec

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
