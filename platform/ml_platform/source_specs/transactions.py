"""Payment transactions: read incrementally from the payments PostgreSQL database."""

from ml_platform.contracts.transactions import CleanTransactions
from ml_platform.sources.postgres_spec import PostgresSourceSpec

_V1 = ("transaction_id", "user_id", "amount", "currency", "status", "created_at", "updated_at", "deleted_at")

SPEC = PostgresSourceSpec(
    name="transactions",
    description="Payment transactions from the payments PostgreSQL database (updates and soft deletes included).",
    owner="team:payments",
    contract=CleanTransactions,
    table="public.transactions",
    key_columns=("transaction_id",),
    event_time_column="created_at",
    partition_column="transaction_date",
    late_tolerance_days=0,
    version_column="updated_at",
    soft_delete_column="deleted_at",
    updated_at_column="updated_at",
    overlap_minutes=10,
    schema_versions={"v1": _V1},
    schema_policy="add_only",
    max_quarantine_fraction=0.0,
)
