"""When downstream assets update by themselves.

Dagster's `eager()` only looks at the latest time partition, so a late file that changes
older event days would be ignored. This condition reacts to an update of any upstream
partition: through the clean layer's partition mapping, a raw landing day X requests exactly
the event days that day X can hold (X - tolerance ... X + 1) and nothing else. It waits while
upstream is running and never builds on a partition whose blocking checks failed.

Dagster's dependency conditions hold when *any* mapped upstream partition matches. For a table
that reads a window of upstream days (a 30-day feature), "blocking checks passed" therefore
means "passed on some day of the window"; the extra `~any_deps_match(check failed)` makes a
failing day anywhere in the window hold the partition back. Days never materialized (no data)
neither pass nor fail, so they do not block.

A table reading a window of days (`reads_days`, e.g. the 30 days before) is kept current by
automation only for its latest days (`recent_days`). Data is at most a week late, and the
partitions after today do not exist yet, so every partition a late file can change lies in the
latest eight days, however long the window. Older history is backfilled (one run per range).
Without the bound, one file for a day in the past launched a run for each of the 30 partitions
of its window (seen in the UI tests: 30 queued runs, about 150 s).
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

AC = dg.AutomationCondition


def on_upstream_update(
    ignore: dg.AssetSelection | None = None,
    recent_days: int | None = None,
    runs_with_deps: bool = True,
    schedule: str | None = None,
) -> dg.AutomationCondition:
    """`ignore`: dependencies that gate (must exist, checks passed) but do not trigger.
    `recent_days`: only partitions within that many days of the latest one are automated.
    `runs_with_deps`: a partition may be requested in the same tick as the dependency partitions
    that trigger it. Dagster counts a dependency requested on this tick as updated, and puts
    partitions of the same key in one run, upstream first. A partition triggered by other days
    (a window of days before, a label's maturity day) would instead run beside its dependency in
    another run, before that is written, and again once it is: with False it waits for the tick
    after. (The demo week's catch-up ran every churn label twice.)
    `schedule`: a cron schedule (UTC); a partition is requested at most once between two of its
    ticks (the updates in between wait for the next tick, then make one run)."""
    updated = AC.any_deps_updated()
    if ignore is not None:
        updated = updated.ignore(ignore)
    condition = (
        updated.since_last_handled()
        & ~AC.any_deps_in_progress()
        & ~AC.in_progress()
        & AC.all_deps_blocking_checks_passed()
        & ~AC.any_deps_match(AC.any_checks_match(AC.check_failed(), blocking_only=True)).with_label(
            "no_dep_blocking_check_failed"
        )
    )
    if not runs_with_deps:
        condition = condition & ~AC.any_deps_match(AC.will_be_requested()).with_label("no_dep_requested_now")
    if recent_days is not None:
        condition = condition & AC.in_latest_time_window(dt.timedelta(days=recent_days))
    if schedule is not None:
        condition = condition & AC.cron_tick_passed(schedule).since(AC.newly_requested()).with_label(
            f"tick_of_{schedule}_since_requested"
        )
    return condition.with_label("on_upstream_update")


def on_new_input(ignore: dg.AssetSelection | None = None) -> dg.AutomationCondition:
    """For an unpartitioned asset built from whole partitioned tables (a training set, a model,
    the serving snapshot): rebuild when a dependency updates (`ignore`: ones that do not
    trigger), never while one is running, never while a partition of one fails its blocking
    check. Unlike `on_upstream_update` it does not wait for every dependency to have passed
    checks: a table never materialized (a source not configured here) would hold it back forever."""
    updated = AC.any_deps_updated()
    if ignore is not None:
        updated = updated.ignore(ignore)
    return (
        updated.since_last_handled()
        & ~AC.any_deps_in_progress()
        & ~AC.in_progress()
        & ~AC.any_deps_match(AC.any_checks_match(AC.check_failed(), blocking_only=True)).with_label(
            "no_dep_blocking_check_failed"
        )
    ).with_label("on_new_input")
