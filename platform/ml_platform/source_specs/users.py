"""Users dimension: the CRM exports a full snapshot of users as CSV."""

from ml_platform.contracts.users import CleanUsers
from ml_platform.sources.spec import FileSourceSpec

SPEC = FileSourceSpec(
    name="users",
    description="Snapshot export of the users dimension from the CRM.",
    owner="team:crm",
    contract=CleanUsers,
    key_columns=("user_id",),
    formats=("csv",),
    schema_versions={"v1": ("user_id", "signup_date", "country", "plan")},
    max_quarantine_fraction=0.01,
)
