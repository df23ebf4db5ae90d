"""Contracts of the clickstream tables: cleaned events and the daily user features built from them."""

from __future__ import annotations

import ibis.expr.datatypes as dt
from pandera.ibis import DataFrameModel, Field

from ml_platform.contracts.lineage import LineageColumns, UtcTimestamp

EVENT_TYPES = ["page_view", "product_view", "search", "add_to_cart", "remove_from_cart", "purchase"]
DEVICES = ["mobile", "desktop", "tablet"]
MAX_AMOUNT = 10_000.0


class CleanEvents(LineageColumns):
    """One row per distinct clickstream event, typed, in UTC, deduplicated by event_id."""

    event_id: dt.String = Field(nullable=False, unique=True, description="Producer's event id (dedup key).")
    user_id: dt.String = Field(nullable=False, description="User who caused the event.")
    event_type: dt.String = Field(isin=EVENT_TYPES, description="What happened.")
    event_time: UtcTimestamp = Field(description="When it happened, UTC.")
    event_date: dt.Date = Field(description="UTC date of event_time: the partition.")
    product_id: dt.String = Field(nullable=True, description="Product involved, if any.")
    amount: dt.Float64 = Field(nullable=True, ge=0.0, le=MAX_AMOUNT, description="Purchase amount.")
    device_type: dt.String = Field(nullable=True, isin=DEVICES, description="Device class (v3 calls it `device`).")
    session_id: dt.String = Field(nullable=True, description="Client session (schema v2+).")

    class Config:
        strict = True


class UserDailyFeatures(DataFrameModel):
    """Batch features per user and UTC day, computed only from that day's clean events."""

    user_id: dt.String = Field(nullable=False, description="Entity key.")
    feature_date: dt.Date = Field(nullable=False, description="UTC day the features describe: the partition.")
    event_count: dt.Int64 = Field(ge=1, description="Events that day.")
    transaction_count: dt.Int64 = Field(ge=0, description="Purchases that day.")
    unique_products: dt.Int64 = Field(ge=0, description="Distinct products touched.")
    daily_spend: dt.Float64 = Field(ge=0.0, description="Sum of purchase amounts.")
    avg_transaction_value: dt.Float64 = Field(nullable=True, ge=0.0, description="Mean purchase amount.")
    max_transaction_value: dt.Float64 = Field(nullable=True, ge=0.0, description="Largest purchase amount.")
    cart_adds: dt.Int64 = Field(ge=0, description="add_to_cart events.")
    primary_device: dt.String = Field(nullable=True, description="Most used device (ties: alphabetical).")
    days_since_signup: dt.Int64 = Field(nullable=True, ge=0, description="feature_date - signup_date.")

    class Config:
        strict = True
