"""Payment transactions: read incrementally from the payments PostgreSQL database."""

from __future__ import annotations

import datetime

import ibis.expr.datatypes as dt
from pandera.ibis import Field

from ml_platform.contracts import personal
from ml_platform.contracts.freshness import FreshnessRule
from ml_platform.contracts.lineage import LineageColumns, UtcTimestamp
from ml_platform.contracts.quality_rules import QualityRules, Reference
from ml_platform.ingestion.postgres import PostgresSourceSpec

CURRENCIES = ["EUR", "USD", "GBP"]


STATUSES = ["pending", "completed", "refunded", "failed"]


class CleanTransactions(LineageColumns):
    """The latest version of each live transaction, partitioned by its UTC creation day."""

    transaction_id: dt.String = Field(nullable=False, unique=True, description="Transaction key in the payments DB.")
    user_id: dt.String = Field(nullable=False, description="User who paid.", metadata=personal.pseudonymized())
    amount: dt.Float64 = Field(ge=0.0, description="Amount in `currency`.")
    currency: dt.String = Field(isin=CURRENCIES, description="ISO currency code.")
    status: dt.String = Field(isin=STATUSES, description="Payment state.")
    created_at: UtcTimestamp = Field(description="When the transaction was created, UTC: picks the partition.")
    transaction_date: dt.Date = Field(description="UTC date of created_at: the partition.")
    updated_at: UtcTimestamp = Field(description="Last change at the source, UTC: the version that wins.")
    deleted_at: UtcTimestamp = Field(
        nullable=True, description="Soft-delete time at the source; deleted rows leave the table."
    )

    class Config:
        strict = True


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
    # Payments change all day and the change sensor extracts within seconds: six quiet hours are
    # unusual, a day without a change means the database or the extraction stopped.
    freshness=FreshnessRule(warn_after=datetime.timedelta(hours=6), error_after=datetime.timedelta(hours=26)),
    quality=QualityRules(references=(Reference(column="user_id", table="clean_users", key="user_id"),)),
)
