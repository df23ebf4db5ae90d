"""The `completeness` check: each column's share of nulls in a partition, against a ceiling and
against the column's usual share on the previous days."""

from __future__ import annotations

import datetime as dt
import statistics

import dagster as dg

from ml_platform.checks.profiles import Profile
from ml_platform.checks.verdicts import ERROR, LEVEL_NAMES, PASS, WARN, history, verdict
from ml_platform.contracts.quality_rules import CompletenessRule
from ml_platform.results import Verdict

COMPLETENESS_CHECK = "completeness"


def judge_completeness(
    rule: CompletenessRule, day: dt.date, profiles: dict[dt.date, Profile], columns: list[str]
) -> Verdict:
    """The verdict on `day`'s null rates, column by column; a day without rows has none to judge."""
    profile = profiles.get(day)
    if profile is None or not profile.rows:
        return verdict(PASS, {"rows": 0, "judged": False}, None)
    past = history(profiles, day, rule.history_days)
    judged_history = len(past) >= rule.min_history
    findings, rates, level = [], {}, PASS
    largest_rise = 0.0
    for column in columns:
        rate = profile.null_rate(column)
        rates[column] = round(rate, 6)
        usual = statistics.median(p.null_rate(column) for p in past) if judged_history else None
        ceiling = rule.max_null_rate.get(column)
        column_level, why = PASS, None
        if ceiling is not None and rate > ceiling:
            column_level, why = ERROR, f"{rate:.1%} null, above its ceiling of {ceiling:.1%}"
        if usual is not None:
            rise = rate - usual
            largest_rise = max(largest_rise, rise)
            if rise >= rule.warn_increase and column_level != ERROR:
                column_level = ERROR if rise >= rule.error_increase else WARN
                why = f"{rate:.1%} null against {usual:.1%} usually (+{rise:.1%})"
        if column_level != PASS:
            findings.append(
                {"column": column, "null_rate": rate, "usual": usual, "level": LEVEL_NAMES[column_level], "why": why}
            )
            level = max(level, column_level)
    metadata = {
        "rows": profile.rows,
        "judged": True,
        "history_days": len(past),
        "max_null_rate": max(rates.values(), default=0.0),
        "largest_rise": round(largest_rise, 6),
        "columns_failing": len(findings),
        "null_rates": dg.MetadataValue.json(rates),
    }
    if findings:
        metadata["findings"] = dg.MetadataValue.json(findings)
    text = None if not findings else f"{day}: " + "; ".join(f"{f['column']} {f['why']}" for f in findings)
    return verdict(level, metadata, text)
