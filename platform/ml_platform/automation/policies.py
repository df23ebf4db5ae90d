"""The automation conditions assets use, composed of the platform's conditions and Dagster's:
`on_upstream_update` (partitioned tables), `on_new_input` (tables built whole), `on_failure_only`
(raw partitions, which their own triggers request)."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from ml_platform.automation.conditions import InFlight, Recover, Stale
from ml_platform.automation.reads import Read

AC = dg.AutomationCondition


def _idle() -> dg.AutomationCondition:
    """No run of the partition queued or running, the latest or any other."""
    return ~AC.in_progress() & ~InFlight()


def _unchecked() -> dg.AutomationCondition:
    """The partition's latest write has no result of a blocking check, though its run did not fail:
    two runs overlapped (their results recorded out of order) or a run died between the write and
    its checks. What reads it would wait for a verdict forever; a rebuild gives one. (A run that
    failed is `Recover`'s: a check that raised is the partition's own fault and stays held.)"""
    return (
        AC.any_checks_match(~AC.check_passed() & ~AC.check_failed(), blocking_only=True)
        & ~AC.missing()
        & ~AC.execution_failed()
    ).with_label("latest_write_has_no_check_result")


def _gates() -> dg.AutomationCondition:
    return (
        ~AC.any_deps_in_progress()
        & AC.all_deps_blocking_checks_passed()
        & ~AC.any_deps_match(AC.any_checks_match(AC.check_failed(), blocking_only=True)).with_label(
            "no_dep_blocking_check_failed"
        )
    )


def on_upstream_update(
    reads: tuple[Read, ...],
    recent_days: int | None = None,
    same_day: tuple[str, ...] = (),
    schedule: str | None = None,
) -> dg.AutomationCondition:
    """A partitioned table's condition (module docstring). `reads`: everything a partition reads.
    `recent_days`: only partitions within that many days of the latest one are automated.
    `same_day`: upstream tables of which a partition reads only its own day. A partition may be
    requested in the same tick as those (Dagster counts a dependency requested on this tick as
    updated and passed, and puts partitions of one key in one run, upstream first). Beside any
    other upstream being requested it would run in another run, before that is written, and again
    once it is: it waits for the tick after.
    `schedule`: a cron schedule (UTC); a partition is built at once the first time, then requested
    at most once between two of its ticks (a stream's clean table: raw is written by every micro-batch). Staleness is a state, so
    the updates in between are not lost: the first evaluation after the next tick sees them and
    makes one run."""
    wanted = Stale(reads) | Recover(reads) | _unchecked()
    if same_day:
        chained = AC.any_deps_match(AC.will_be_requested()).allow(dg.AssetSelection.assets(*same_day))
        wanted = wanted | chained.with_label("same_day_upstream_requested_now")
    condition = _idle() & wanted & _gates()
    others = AC.any_deps_match(AC.will_be_requested())
    if same_day:
        others = others.ignore(dg.AssetSelection.assets(*same_day))
    condition = condition & ~others.with_label("other_upstream_requested_now")
    if recent_days is not None:
        condition = AC.in_latest_time_window(dt.timedelta(days=recent_days)) & condition
    if schedule is not None:
        # A partition never built (a new day's) is built at once; after that, at most once
        # between two ticks.
        rhythm = AC.cron_tick_passed(schedule).since(AC.newly_requested()) | AC.missing()
        condition = condition & rhythm.with_label(f"tick_of_{schedule}_since_requested_or_never_built")
    return condition.with_label("on_upstream_update")


def on_new_input(reads: tuple[Read, ...]) -> dg.AutomationCondition:
    """For an unpartitioned asset built from whole tables (a training set, a model, the serving
    snapshot): rebuilt when something it reads is newer, never while a dependency runs or a
    partition of one fails its blocking check. Unlike `on_upstream_update` it does not wait for
    every dependency to have passed checks: a table never materialized (a source not configured
    here) would hold it back forever."""
    return (
        _idle()
        & (Stale(reads) | Recover(reads) | _unchecked())
        & ~AC.any_deps_in_progress()
        & ~AC.any_deps_match(AC.any_checks_match(AC.check_failed(), blocking_only=True)).with_label(
            "no_dep_blocking_check_failed"
        )
    ).with_label("on_new_input")


def on_failure_only() -> dg.AutomationCondition:
    """For an asset its own trigger requests (a raw partition: the landing sensor, a schedule):
    automation only retries an attempt that died or failed for a reason that is not its data."""
    return (_idle() & Recover()).with_label("retry_failed_attempt")
