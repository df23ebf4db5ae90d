"""What both real-time user activity views aggregate, over the `stream_events` clickstream."""

from __future__ import annotations

# Feature name (before its window suffix) -> aggregate over the window's distinct events.
AGGREGATES = {
    "events": "count(*)",
    "unique_products_viewed": "count(DISTINCT product_id) FILTER (WHERE event_type = 'product_view')",
    "cart_adds": "count(*) FILTER (WHERE event_type = 'add_to_cart')",
    "purchases": "count(*) FILTER (WHERE event_type = 'purchase')",
    # An exact DECIMAL sum: the same events give the same spend to the last bit, whatever order
    # they were summed in (cents, and a margin: amounts are at most 10 000).
    "spend": "CAST(coalesce(sum(CAST(amount AS DECIMAL(38, 6))) FILTER (WHERE event_type = 'purchase'), 0) AS DOUBLE)",
}


def aggregates(suffix: str) -> dict[str, str]:
    return {f"{name}_{suffix}": expr for name, expr in AGGREGATES.items()}
