"""The `volume` check: a partition's row count against the table's previous days (robust z-score)."""

from __future__ import annotations

import datetime as dt
import math

from ml_platform.checks.profiles import Profile
from ml_platform.checks.verdicts import ERROR, PASS, WARN, history, median_and_mad, verdict
from ml_platform.contracts.quality_rules import VolumeRule
from ml_platform.results import Verdict

VOLUME_CHECK = "volume"
MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation


def judge_volume(rule: VolumeRule, day: dt.date, profiles: dict[dt.date, Profile], today: dt.date) -> Verdict:
    """The verdict on `day`'s rows; a day not over yet (today, in UTC) is not judged against history,
    since it is still filling up: the run that rewrites it once later data lands judges it."""
    rows = profiles[day].rows if day in profiles else 0
    past = [p.rows for p in history(profiles, day, rule.history_days)]
    metadata: dict = {"rows": rows, "history_days": len(past), "min_rows": rule.min_rows}
    if day >= today:
        return verdict(PASS, {**metadata, "judged": False}, None)
    if rows < rule.min_rows:
        text = f"{day}: {rows} rows, below the minimum of {rule.min_rows}"
        return verdict(ERROR, {**metadata, "judged": True}, text)
    if len(past) < rule.min_history:
        return verdict(PASS, {**metadata, "judged": False}, None)
    expected, mad = median_and_mad(past)
    # A count varies by at least its square root (Poisson), whatever the history's MAD says: a log
    # of about 5 records a day holding 2 is not unusual.
    spread = max(MAD_TO_SIGMA * mad, rule.min_spread * expected, math.sqrt(expected), 1.0)
    deviation = (rows - expected) / spread
    level = ERROR if abs(deviation) >= rule.error_deviation else WARN if abs(deviation) >= rule.warn_deviation else PASS
    metadata |= {
        "judged": True,
        "expected_rows": float(expected),
        "deviation": round(deviation, 3),
        "warn_low": round(expected - rule.warn_deviation * spread, 1),
        "warn_high": round(expected + rule.warn_deviation * spread, 1),
    }
    text = None
    if level != PASS:
        bound = rule.error_deviation if level == ERROR else rule.warn_deviation
        text = (
            f"{day}: {rows} rows against {expected:g} expected (median of {len(past)} previous days), "
            f"{abs(deviation):.1f} robust deviations {'below' if deviation < 0 else 'above'}, beyond {bound:g}"
        )
    return verdict(level, metadata, text)
