"""When assets update by themselves: a partition is rebuilt when something it reads is newer than it.

Each curated table, clean table and training set declares everything a partition reads (`Read`:
upstream days as offsets from its own day, all history before it, a snapshot history as of a day,
a label's clock). The Dagster dependencies are derived from the same declarations, and the
condition here compares storage ids in Dagster's event log: a partition is **stale** when a
materialization of any partition it reads was stored after its own last build was planned. That
is a state, computed afresh at every tick, not an event to catch: a run that dies, a tick that
sees the partition's own write and an upstream write at once, an update while its run waited in
the queue, a restart of `dagster dev`: whatever happened in between, the next tick sees the same
comparison and requests the partition again. So late files, retries and crash recovery converge
by construction (`docs/guarantees.md`).

Why not Dagster's `any_deps_updated().since_last_handled()`: it is an edge, and an edge can be
lost. When a partition's own materialization and a newer upstream materialization are first seen
on the same tick, `since` resets (its and/or operands carry no timestamps to order them), and the
partition is never requested again though it was built from the older input. In a catch-up, two
runs finishing within one tick is common (platform_tests/test_convergence.py reproduces it). And
a request counts as handled when it is made: a run killed twice (out of run retries) is forgotten.

A partition whose last attempt did not materialize it (`Recover`):
- its run is still queued or running: nothing (in progress);
- it failed for a reason that is not its own data (the process died, dagster dev was killed, the
  warehouse lock timed out): requested again after a backoff that doubles with each failed attempt
  (`settings.retry_backoff_seconds`, at most `RETRY_BACKOFF_CAP_SECONDS`), also once Dagster's own run
  retry is used up; while Dagster's retry is still to come, it waits for it;
- it failed on its own data (an error in its SQL or its accounting) or was canceled by a user: held,
  until something it reads changes.
A partition whose blocking check failed was materialized: it stays as it is, and what reads it is
held back (below), until something it reads changes.

The rest of the condition is as before:
- never while the partition or anything it reads is in progress, never on a partition whose
  blocking checks failed (Dagster's dependency conditions hold when *any* mapped upstream partition
  matches: `all_deps_blocking_checks_passed` means "passed on some day of the window", so
  `~any_deps_match(check failed)` holds the partition back when any day it reads failed);
- a table reading only its own day may run in the same run as that day's upstream (Dagster puts
  partitions of one key requested on one tick in one run, upstream first); a table reading other
  days waits for the tick after its upstream was written (`same_day`);
- a table with a `schedule` (a stream's clean table, whose raw partition every micro-batch
  writes) is built at once the first time (a new day), then requested at most once between two
  ticks of its cron schedule;
- a table reading a window of days is kept current by automation only for its latest days
  (`recent_days`): data is at most a week late, so every partition a late file can change lies in
  the latest eight days however long the window; older history is backfilled, and the audit
  (`python -m ml_platform audit`) reports any partition left behind.

Modules: `reads` (what a partition declares it reads), `event_log` (what a tick reads of the
instance), `conditions` (`Stale`, `Recover`, `InFlight`), `retry` (which failures are retried, and
when), `policies` (the conditions assets use).
"""

from ml_platform.automation.conditions import InFlight, Recover, Stale
from ml_platform.automation.event_log import run_partitions
from ml_platform.automation.policies import on_failure_only, on_new_input, on_upstream_update
from ml_platform.automation.reads import CHANGED_FROM, NOT_FINAL, READ_DAYS, Read, mapping_window
from ml_platform.automation.retry import backoff_seconds, transient_failure

__all__ = [
    "CHANGED_FROM",
    "NOT_FINAL",
    "READ_DAYS",
    "InFlight",
    "Read",
    "Recover",
    "Stale",
    "backoff_seconds",
    "mapping_window",
    "on_failure_only",
    "on_new_input",
    "on_upstream_update",
    "run_partitions",
    "transient_failure",
]
