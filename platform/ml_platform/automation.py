"""When downstream assets update by themselves.

Dagster's `eager()` only looks at the latest time partition, so a late file that changes
older event days would be ignored. This condition reacts to an update of any upstream
partition: through the clean layer's partition mapping, a raw landing day X requests exactly
the event days that day X can hold (X - tolerance ... X + 1) and nothing else. It waits while
upstream is running and never builds on a partition whose blocking checks failed.
"""

from __future__ import annotations

import dagster as dg

AC = dg.AutomationCondition


def on_upstream_update(ignore: dg.AssetSelection | None = None) -> dg.AutomationCondition:
    """`ignore`: dependencies that gate (must exist, checks passed) but do not trigger."""
    updated = AC.any_deps_updated()
    if ignore is not None:
        updated = updated.ignore(ignore)
    return (
        updated.since_last_handled()
        & ~AC.any_deps_in_progress()
        & ~AC.in_progress()
        & AC.all_deps_blocking_checks_passed()
    ).with_label("on_upstream_update")
