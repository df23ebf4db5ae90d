"""Products dimension: the catalogue exports a daily snapshot of all products as CSV."""

from ml_platform.contracts.dimensions import CleanProducts
from ml_platform.sources.spec import FileSourceSpec

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
