"""Products dimension: the catalogue exports a daily snapshot of all products as CSV; every version kept."""

from __future__ import annotations

import ibis.expr.datatypes as dt
from pandera.ibis import Field

from ml_platform.contracts.lineage import HistoryColumns, LineageColumns
from ml_platform.ingestion.files import FileSourceSpec


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


SPEC = FileSourceSpec(
    name="products",
    description="Daily snapshot of the product catalogue.",
    owner="team:catalogue",
    contract=CleanProducts,
    key_columns=("product_id",),
    formats=("csv",),
    schema_versions={"v1": ("product_id", "category", "price", "active")},
    schema_policy="add_only",
    max_quarantine_fraction=0.01,
)
