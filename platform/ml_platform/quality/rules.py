"""What a source declares about its normal data: the thresholds of its quality checks.

A `SourceSpec` carries one `QualityRules` (`quality=`); every field has a default that suits a
daily batch source, so a source declares only what differs. Set `volume`, `completeness` or
`late_arrivals` to None to switch that check off for the source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class VolumeRule:
    """A partition's row count against the same table's previous days.

    The expected count is the median of the days in the trailing window that hold rows; the
    spread is their median absolute deviation (MAD, scaled to a standard deviation), but never
    less than `min_spread` of the median, so a source whose days are almost equal does not alarm
    on a 2 % dip. The deviation is (rows - median) / spread: a robust z-score.
    """

    history_days: int = 28
    # Fewer previous days with rows than this: the partition is not judged (only min_rows holds).
    min_history: int = 5
    warn_deviation: float = 3.0
    error_deviation: float = 6.0
    min_spread: float = 0.05
    # Hard minimum: a finished day with fewer rows is an ERROR whatever its history.
    min_rows: int = 1

    def describe(self) -> str:
        return (
            f"Rows of each finished day against the median of up to {self.history_days} previous days "
            f"(robust z-score: WARN beyond {self.warn_deviation:g}, ERROR beyond {self.error_deviation:g}); "
            f"ERROR below {self.min_rows} rows."
        )

    def __post_init__(self):
        if not 0 < self.warn_deviation <= self.error_deviation:
            raise ValueError("volume: 0 < warn_deviation <= error_deviation")
        if self.history_days < self.min_history or self.min_history < 1:
            raise ValueError("volume: 1 <= min_history <= history_days")


@dataclass(frozen=True, kw_only=True)
class CompletenessRule:
    """Each column's share of nulls in a partition.

    Against a fixed ceiling (`max_null_rate`, per column: an ERROR above it), and against the
    column's own usual rate (the median of the trailing days): a rise of `warn_increase` is a
    WARN, of `error_increase` an ERROR. Nullable columns count too: a column that is usually 5 %
    empty and suddenly 45 % empty is the kind of break this is for.
    """

    max_null_rate: Mapping[str, float] = field(default_factory=dict)
    warn_increase: float = 0.10
    error_increase: float = 0.30
    history_days: int = 28
    min_history: int = 5

    def describe(self) -> str:
        ceilings = ", ".join(f"{column} <= {rate:.0%}" for column, rate in self.max_null_rate.items())
        return (
            f"Null rate of every column against its usual rate (median of up to {self.history_days} previous "
            f"days): WARN at +{self.warn_increase:.0%}, ERROR at +{self.error_increase:.0%}"
            + (f"; ceilings {ceilings}." if ceilings else ".")
        )

    def __post_init__(self):
        if not 0 < self.warn_increase <= self.error_increase:
            raise ValueError("completeness: 0 < warn_increase <= error_increase")
        bad = {c: r for c, r in self.max_null_rate.items() if not 0 <= r <= 1}
        if bad:
            raise ValueError(f"completeness: null-rate ceilings must be within [0, 1]: {bad}")


@dataclass(frozen=True, kw_only=True)
class LateArrivalRule:
    """How much of a day's data may arrive after the day, and beyond the source's tolerance.

    Late rows are rows of an event day that landed on a later day (still within the tolerance:
    they are kept). A share of at least `warn_rate` of the day's accepted rows is a WARN, of
    `error_rate` an ERROR. Rows that landed on this day for an event day already beyond the
    tolerance are quarantined (the contract counts them); more than `max_beyond_tolerance` of
    them is a WARN here, so the delay shows where it happens.
    """

    warn_rate: float = 0.25
    error_rate: float = 0.5
    max_beyond_tolerance: int = 0

    def describe(self) -> str:
        return (
            f"Share of each day's rows that landed after the day (WARN at {self.warn_rate:.0%}, ERROR at "
            f"{self.error_rate:.0%}), and rows landing that day beyond the source's tolerance (WARN above "
            f"{self.max_beyond_tolerance})."
        )

    def __post_init__(self):
        if not 0 < self.warn_rate <= self.error_rate <= 1:
            raise ValueError("late arrivals: 0 < warn_rate <= error_rate <= 1")


@dataclass(frozen=True, kw_only=True)
class QualityRules:
    volume: VolumeRule | None = field(default_factory=VolumeRule)
    completeness: CompletenessRule | None = field(default_factory=CompletenessRule)
    late_arrivals: LateArrivalRule | None = field(default_factory=LateArrivalRule)

    @property
    def history_days(self) -> int:
        """How far back the checks read (the longer of the two windows)."""
        windows = [r.history_days for r in (self.volume, self.completeness) if r is not None]
        return max(windows, default=0)

    @property
    def reads_history(self) -> bool:
        """Whether a check compares a day with earlier days (and so needs the stored profiles)."""
        return self.volume is not None or self.completeness is not None

    @property
    def enabled(self) -> bool:
        return any(r is not None for r in (self.volume, self.completeness, self.late_arrivals))
