"""The Dagster preview and beta features the platform relies on, acknowledged once, where used.

Dagster warns each time one of these is used (about forty lines per CLI call or `dagster dev`
start). The platform depends on them deliberately, so their warnings are silenced at exactly the
call sites that rely on them, each with a comment saying why it is safe; any other preview or
beta warning still shows, because it is news. `test_definitions` asserts that loading the
definitions prints none.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

# The phrase Dagster's warning uses for each feature -> why relying on it is safe here.
RELIED_ON = {
    "partitions_def on an AssetCheckSpec": (
        "Partitioned checks give every partition its own contract verdict, which gates that partition's "
        "downstream. Pinned Dagster version; the automation and range-backfill tests fail if it changes."
    ),
    "backfill_policy": (
        "Single-run backfills make a range one set-based SQL write; the per-partition check evidence "
        "(results.publish) keeps gating per partition. Covered by the CLI range tests."
    ),
    "use_user_code_server": (
        "The automation sensor is evaluated in the code location so that it can run the platform's own "
        "conditions (ml_platform.automation: a partition is stale when something it reads is newer). "
        "Under 500 assets, Dagster's limit for it. Covered by the automation and convergence tests."
    ),
    "allow_nonexistent_upstream_partitions": (
        "The clean layer's late-data mapping reaches landing days that do not exist yet (today + 1); "
        "they simply hold no rows. Covered by the automation tests."
    ),
}


@contextmanager
def acknowledged(feature: str) -> Iterator[None]:
    """Silence Dagster's preview/beta warning about `feature` (a key of RELIED_ON) inside the block."""
    if feature not in RELIED_ON:
        raise KeyError(f"{feature!r} is not a Dagster preview feature the platform has acknowledged")
    with warnings.catch_warnings():
        for category in (dg.PreviewWarning, dg.BetaWarning):
            warnings.filterwarnings("ignore", message=f".*{re.escape(feature)}.*", category=category)
        yield
