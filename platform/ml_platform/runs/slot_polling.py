"""How a run waiting for a pool slot (the duckdb pool) asks for it: often, and asleep in between.

Every warehouse write holds the duckdb pool's one slot, so in `make dev`'s catch-up the next run is
usually started while another writes, and its step waits for the slot. Dagster 1.13's step loop
handles that wait in two ways that cost the catch-up a fifth of its time (134 -> 107 s; measured with
`platform_tests/test_slot_polling.py`'s setup and in `benchmarks/dev_bench.py`):
- it asks for the slot again after 1 s, then 1.1 s, 1.21 s ... up to 15 s, so a freed slot stays
  unused for 0.5-1 s on average (0.85 s measured; the demo week's steps take 0.2-0.8 s each);
- between asks it does not sleep: `interval_to_next_pending_claim_check` returns `min(0, ...)`,
  which is never positive, so the waiting run spins on a core (4.0 s of CPU in 4 s of waiting).
  On a 2-core machine that core is taken from the step holding the slot and from the daemons.

`apply()` (called in each forked run, `runs.forks`) asks every `POLL_SECONDS` and sleeps until
the next ask. An ask is one indexed query on the instance's SQLite event log. Slots are still
handed out by Dagster's storage in its own order (priority, then arrival); only the waiting changes.
"""

from __future__ import annotations

import time
import warnings

# A freed slot is taken within this long. 10 asks per second per waiting run (at most
# max_concurrent_runs - 1 of them wait) cost well under 1% of a core.
POLL_SECONDS = 0.1


def _poll_interval(sleep_interval: float | None, pending_claim_count: int) -> float:
    """Replaces Dagster's growing interval (1 s, 1.1 s, 1.21 s ...); a storage that names its own
    interval (`sleep_interval`) keeps it."""
    return sleep_interval if sleep_interval is not None else POLL_SECONDS


def _seconds_to_next_ask(self) -> float:
    """Time until the earliest waiting step may ask again (0 when one may ask now), so the step
    loop sleeps that long instead of spinning."""
    if not self._pending_claims:
        return 0.0
    now = time.time()
    return max(0.0, min((ready_at - now for ready_at in self._pending_timeouts.values()), default=0.0))


def apply() -> bool:
    """Patch this process's Dagster; returns False (with a warning) when this Dagster version does
    not have the functions replaced here, in which case Dagster's own behaviour stays."""
    from ml_platform import dagster_private

    if not dagster_private.enabled("slot_polling"):
        return False
    try:
        module = dagster_private.instance_concurrency_context
    except ImportError:  # the module itself is gone: warned below
        module = None

    context_class = getattr(module, "InstanceConcurrencyContext", None)
    if not hasattr(module, "_calculate_timeout_interval") or not hasattr(
        context_class, "interval_to_next_pending_claim_check"
    ):
        warnings.warn(
            "ml_platform.runs.slot_polling: this Dagster version differs; pool waits left as they are", stacklevel=2
        )
        return False
    module._calculate_timeout_interval = _poll_interval
    context_class.interval_to_next_pending_claim_check = _seconds_to_next_ask
    return True
