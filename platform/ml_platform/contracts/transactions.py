"""Contract of the payments database's transactions, as cleaned from the PostgreSQL source."""

from __future__ import annotations

import ibis.expr.datatypes as dt
from pandera.ibis import Field

from ml_platform.contracts.lineage import LineageColumns, UtcTimestamp

CURRENCIES = ["EUR", "USD", "GBP"]
STATUSES = ["pending", "completed", "refunded", "failed"]


class CleanTransactions(LineageColumns):
    """The latest version of each live transaction, partitioned by its UTC creation day."""

    transaction_id: dt.String = Field(nullable=False, unique=True, description="Transaction key in the payments DB.")
    user_id: dt.String = Field(nullable=False, description="User who paid.")
    amount: dt.Float64 = Field(ge=0.0, description="Amount in `currency`.")
    currency: dt.String = Field(isin=CURRENCIES, description="ISO currency code.")
    status: dt.String = Field(isin=STATUSES, description="Payment state.")
    created_at: UtcTimestamp = Field(description="When the transaction was created, UTC: picks the partition.")
    transaction_date: dt.Date = Field(description="UTC date of created_at: the partition.")
    updated_at: UtcTimestamp = Field(description="Last change at the source, UTC: the version that wins.")
    deleted_at: UtcTimestamp = Field(nullable=True, description="Soft-delete time at the source; deleted rows leave the table.")

    class Config:
        strict = True
