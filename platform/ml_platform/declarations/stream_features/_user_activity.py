"""What both real-time user activity views hold: per user, over the `stream_events` clickstream in
their window, each feature's SQL aggregate, type, rule and description, defined once here."""

from __future__ import annotations

from dataclasses import dataclass

import ibis.expr.datatypes as dt
from pandera.ibis import Field

from ml_platform.contracts import personal
from ml_platform.curated.stream_view import StreamViewRow


@dataclass(frozen=True)
class Feature:
    sql: str  # an aggregate over the window's distinct events
    type: type
    description: str
    at_least: int | float = 0


# Feature name (before its window suffix) -> its definition.
FEATURES = {
    "events": Feature("count(*)", dt.Int64, "Distinct events in the window.", at_least=1),
    "unique_products_viewed": Feature(
        "count(DISTINCT product_id) FILTER (WHERE event_type = 'product_view')", dt.Int64, "Distinct products viewed."
    ),
    "cart_adds": Feature("count(*) FILTER (WHERE event_type = 'add_to_cart')", dt.Int64, "Add-to-cart events."),
    "purchases": Feature("count(*) FILTER (WHERE event_type = 'purchase')", dt.Int64, "Purchase events."),
    # An exact DECIMAL sum: the same events give the same spend to the last bit, whatever order
    # they were summed in (cents, and a margin: amounts are at most 10 000).
    "spend": Feature(
        "CAST(coalesce(sum(CAST(amount AS DECIMAL(38, 6))) FILTER (WHERE event_type = 'purchase'), 0) AS DOUBLE)",
        dt.Float64,
        "Sum of purchase amounts (exact to the cent).",
        at_least=0.0,
    ),
}


def aggregates(suffix: str) -> dict[str, str]:
    """The view's aggregates: `<feature>_<suffix>` -> SQL."""
    return {f"{name}_{suffix}": feature.sql for name, feature in FEATURES.items()}


def contract(name: str, suffix: str, span: str) -> type[StreamViewRow]:
    """The view's contract `name`: the user key, the stream view's bookkeeping, `<feature>_<suffix>`
    for each feature; `span` says the window in words ("5 minutes")."""
    annotations: dict[str, type] = {"user_id": dt.String}
    fields = {"user_id": Field(nullable=False, description="Entity key.", metadata=personal.pseudonymized())}
    for feature_name, feature in FEATURES.items():
        column = f"{feature_name}_{suffix}"
        annotations[column] = feature.type
        fields[column] = Field(ge=feature.at_least, description=feature.description)
    doc = f"Per user and micro-batch that brought them events: their activity in the {span} up to their newest event."
    namespace = {"__annotations__": annotations, "__doc__": doc, "__module__": __name__, **fields}
    return type(name, (StreamViewRow,), namespace)
