"""Freshness: how often a source is expected to land, and the verdict on how long ago it last did.

A source declares its cadence as a `FreshnessRule` (`freshness=` in its `SPEC`; the default,
`DAILY`, suits a daily batch source). The same rule is used twice, so the two views the UI
gives cannot disagree:

- as Dagster's own `FreshnessPolicy.time_window` on the source's raw and clean assets (and,
  derived, on the curated tables that read them: `derived_rule`), which Dagster's freshness
  daemon evaluates against each asset's latest materialization: the UI's freshness state
  (PASS / WARN / FAIL) and its list of overdue assets;
- as the thresholds of the raw asset's `landing_freshness` check (`judge_landing`), which
  measures when data last *landed* at the source, whether or not a run ingested it: a file
  source whose producer stopped writing turns WARN, then ERROR, even when nothing else moves.

Times are UTC throughout.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import dagster as dg

from ml_platform.results import Verdict

LANDING_FRESHNESS_CHECK = "landing_freshness"


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


def judge_landing(source: str, landing: Landing, rule: FreshnessRule, now: dt.datetime) -> Verdict:
    """The `landing_freshness` verdict: the lag since the newest landing against the rule.

    The metadata holds the lag and both thresholds in hours (numbers the UI plots), the landing
    time and what landed; the description says it in words.
    """
    # A clock behind the file's (another machine's) must not give a negative lag.
    lag = max(now - landing.at, dt.timedelta(0))
    limits = ((dg.AssetCheckSeverity.ERROR, rule.error_after), (dg.AssetCheckSeverity.WARN, rule.warn_after))
    crossed = next(((severity, limit) for severity, limit in limits if lag >= limit), None)
    if crossed:
        (severity, limit), passed = crossed, False
        verdict = f"{severity.value}: older than {hours_text(limit)}"
    else:  # a passing verdict is recorded with WARN severity (it has none)
        severity, passed, verdict = dg.AssetCheckSeverity.WARN, True, f"within {hours_text(rule.warn_after)}"
    return Verdict(
        passed=passed,
        severity=severity,
        metadata={
            "lag_hours": round(lag.total_seconds() / 3600, 3),
            "warn_after_hours": rule.warn_after.total_seconds() / 3600,
            "error_after_hours": rule.error_after.total_seconds() / 3600,
            "landed_at": dg.MetadataValue.timestamp(landing.at),
            "newest": landing.what,
        },
        description=(
            f"{source}: newest data ({landing.what}) landed {hours_text(lag)} ago, at "
            f"{landing.at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC; {verdict}."
        ),
    )


def nothing_landed(source: str, where: str) -> Verdict:
    """The verdict of a run that finds nothing ever landed (the sensor stays silent then, as
    Dagster's freshness state stays UNKNOWN before a first materialization)."""
    return Verdict(
        passed=False,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"newest": "none"},
        description=f"{source}: nothing has landed in {where} yet.",
    )


def same_verdict(verdict: Verdict, evaluation: dg.AssetCheckEvaluation | None) -> bool:
    """Whether a recorded evaluation already says what `verdict` says: same outcome, same newest
    landing. The lag alone growing is not news until it crosses a threshold."""
    if evaluation is None:
        return False
    recorded = {k: v.value for k, v in evaluation.metadata.items()}
    current = {k: getattr(v, "value", v) for k, v in verdict.metadata.items()}
    return (
        evaluation.passed == verdict.passed
        and (verdict.passed or evaluation.severity == verdict.severity)
        and all(recorded.get(k) == current.get(k) for k in ("newest", "landed_at"))
    )
