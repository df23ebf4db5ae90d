"""Freshness: how often a source is expected to land, and the verdict on how long ago it last did.

A source declares its cadence as a `FreshnessRule` (`freshness=` in its `SPEC`; the default,
`DAILY`, suits a daily batch source). The same rule is used twice, so the two views the UI
gives cannot disagree:

- as Dagster's own `FreshnessPolicy.time_window` on the source's raw and clean assets (and,
  derived, on the curated tables that read them: `derived_rule`), which Dagster's freshness
  daemon evaluates against each asset's latest materialization: the UI's freshness state
  (PASS / WARN / FAIL) and its list of overdue assets;
- as the thresholds of the raw asset's `landing_freshness` check (`ml_platform.checks.landing_freshness`), which
  measures when data last *landed* at the source, whether or not a run ingested it: a file
  source whose producer stopped writing turns WARN, then ERROR, even when nothing else moves.

Times are UTC throughout.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import dagster as dg


@dataclass(frozen=True, kw_only=True)
class FreshnessRule:
    """How long a source (or a table built from it) may go without new data.

    Past `warn_after` since the newest landing the verdict is WARN, past `error_after` ERROR.
    Dagster's policy has the same two windows (its `warn_window` and `fail_window`).
    """

    warn_after: dt.timedelta
    error_after: dt.timedelta

    def __post_init__(self):
        # Dagster refuses policy windows under a minute; a warning must come before the error.
        if not dt.timedelta(minutes=1) <= self.warn_after < self.error_after:
            raise ValueError("freshness: need 1 minute <= warn_after < error_after")

    def policy(self) -> dg.FreshnessPolicy:
        """The rule as Dagster's freshness policy, evaluated on an asset's latest materialization."""
        return dg.FreshnessPolicy.time_window(fail_window=self.error_after, warn_window=self.warn_after)

    def describe(self) -> str:
        return f"WARN after {hours_text(self.warn_after)}, ERROR after {hours_text(self.error_after)}"


# A daily batch: a day plus two hours of grace for a producer running late, then an error once a
# second day is missing.
DAILY = FreshnessRule(warn_after=dt.timedelta(hours=26), error_after=dt.timedelta(hours=50))


def loosest(rules: Iterable[FreshnessRule]) -> FreshnessRule | None:
    """The most patient of the rules (the longest windows), or None for none."""
    rules = list(rules)
    if not rules:
        return None
    return FreshnessRule(warn_after=max(r.warn_after for r in rules), error_after=max(r.error_after for r in rules))


def derived_rule(reads: Iterable[str], known: Mapping[str, FreshnessRule]) -> FreshnessRule:
    """The rule of a table that declares none: the loosest of the tables it reads (`known`, by
    table name), DAILY when none of them is known.

    A curated table is rebuilt whenever one of its inputs lands, so it is late only when none of
    them has landed within its own window: judged by its most patient input it does not alarm
    about a slow input that is merely on schedule, while a stopped input is reported where it
    stops (on that source's raw asset and its `landing_freshness` check).
    """
    return loosest(known[t] for t in reads if t in known) or DAILY


@dataclass(frozen=True)
class Landing:
    """The newest data that landed for a source: what it was and when it arrived (UTC)."""

    what: str  # e.g. "file landing/events/2026-11-25/part-1.csv", "raw_weather partition 2026-11-25 (run 1a2b3c4d)"
    at: dt.datetime


def hours_text(delta: dt.timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f} h"
