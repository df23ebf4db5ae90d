"""What the quality checks share: severity levels, the trailing history of a day, robust statistics."""

from __future__ import annotations

import datetime as dt
import statistics

import dagster as dg

from ml_platform.checks.profiles import Profile
from ml_platform.results import Verdict

PASS, WARN, ERROR = 0, 1, 2
SEVERITY = {WARN: dg.AssetCheckSeverity.WARN, ERROR: dg.AssetCheckSeverity.ERROR}
LEVEL_NAMES = {WARN: "WARN", ERROR: "ERROR"}


def verdict(level: int, metadata: dict, description: str | None) -> Verdict:
    """A check verdict at `level`; a passing one is recorded with WARN severity (it has none)."""
    return Verdict(
        passed=level == PASS,
        metadata=metadata,
        description=description,
        severity=SEVERITY.get(level, dg.AssetCheckSeverity.WARN),
    )


def level_of(v: Verdict) -> int:
    if v.passed:
        return PASS
    return ERROR if v.severity == dg.AssetCheckSeverity.ERROR else WARN


def history(profiles: dict[dt.date, Profile], day: dt.date, days: int) -> list[Profile]:
    """The profiles of the `days` days before `day` that hold rows, oldest first."""
    return [profiles[d] for d in sorted(profiles) if day - dt.timedelta(days=days) <= d < day and profiles[d].rows]


def median_and_mad(values: list[float]) -> tuple[float, float]:
    """Median and median absolute deviation."""
    med = statistics.median(values)
    return med, statistics.median(abs(v - med) for v in values)


def worst(verdicts: dict[str, Verdict], summary: dict, what: str) -> Verdict:
    """A range run's own verdict: its worst partition's level, naming the partitions at fault."""
    if len(verdicts) == 1:
        return next(iter(verdicts.values()))
    level = max((level_of(v) for v in verdicts.values()), default=PASS)
    failing = sorted(p for p, v in verdicts.items() if not v.passed)
    text = (
        None
        if level == PASS
        else f"{what} failed for {', '.join(failing)}: " + "; ".join(verdicts[p].description or "" for p in failing)
    )
    return verdict(level, {**summary, "failing_partitions": len(failing)}, text)
