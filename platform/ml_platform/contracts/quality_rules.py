"""What a source declares about its normal data: the thresholds of its quality checks.

A `SourceSpec` carries one `QualityRules` (`quality=`); every field has a default that suits a
daily batch source, so a source declares only what differs. Set `volume`, `completeness` or
`late_arrivals` to None to switch that check off for the source. `uniqueness` holds for snapshot
sources too; `references` are off until a source names the dimensions its keys point at.
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
    on a 2 % dip, nor less than the median's square root (a count's Poisson noise), so a source of
    a handful of rows a day does not alarm on 2 instead of 5. The deviation is (rows - median) / spread: a robust z-score.
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
class UniquenessRule:
    """The source's key (its `key_columns`, composite keys included) names one row.

    Within a partition the clean write keeps one copy of each key; across partitions it cannot,
    since a producer that re-sends an event with another event time puts the key on two days.
    Each written day's keys are therefore looked up in the rest of the table: the days within
    `across_days` of it, or the whole table when None: a scan of the key columns that grows with
    the table, 0.04 s at 1 M rows and 0.6 s at 10 M (one day's keys against 100 days, 2 busy
    cores). Snapshot sources: one current version per key, and one version per key and
    `valid_from`. Any duplicate is an ERROR.
    """

    across_days: int | None = None

    def describe(self, key_columns: tuple[str, ...]) -> str:
        where = "the whole table" if self.across_days is None else f"the {self.across_days} days either side"
        return f"ERROR when a key ({', '.join(key_columns)}) appears twice in a day, or also on another day of {where}."

    def __post_init__(self):
        if self.across_days is not None and self.across_days < 1:
            raise ValueError("uniqueness: across_days must be at least 1 (or None for the whole table)")


@dataclass(frozen=True, kw_only=True)
class Reference:
    """A column whose values must be keys of a dimension (a clean table), as of the row's day.

    `table`/`key`: the dimension's clean table and key column. When the dimension keeps versions
    (`valid_from`/`valid_to`, a snapshot source), a value is known on day D when a version of it
    was valid on D, or started within `lag_days` after D: a dimension exported daily may list a
    user who signed up on D only in the next day's snapshot. Days later than the dimension's last
    snapshot minus `lag_days` cannot be told yet: their unknown values count as unresolved, not as
    orphans. Null values are not references. Orphans above `warn_rate` of the day's references
    are a WARN, above `error_rate` an ERROR.
    """

    column: str
    table: str
    key: str
    lag_days: int = 1
    warn_rate: float = 0.0
    error_rate: float = 0.01

    def __post_init__(self):
        if not 0 <= self.warn_rate <= self.error_rate <= 1:
            raise ValueError(f"reference {self.column}: 0 <= warn_rate <= error_rate <= 1")
        if self.lag_days < 0:
            raise ValueError(f"reference {self.column}: lag_days must be >= 0")

    def describe(self) -> str:
        return f"{self.column} -> {self.table}.{self.key}"


@dataclass(frozen=True, kw_only=True)
class DriftRule:
    """A curated table's features against the days before: the population stability index.

    Each day's distribution of every feature (numeric: binned by the reference's deciles; text:
    by value, when it has at most `max_categories` values) against the `reference_days` before
    it. PSI from `warn_psi` is a WARN, from `error_psi` an ERROR. A day with fewer than
    `min_rows` values of a feature, or a reference with fewer than `min_reference_rows`, is not
    judged for that feature: PSI has sampling noise of about (bins - 1) * (1/n + 1/m) for n
    values of the day and m of the reference, 0.05 at 200 values over 10 bins, so small days
    would drift by chance. `columns`: the features to watch (None: every numeric or text column
    but the keys and the partition).
    """

    reference_days: int = 28
    warn_psi: float = 0.1
    error_psi: float = 0.25
    min_rows: int = 200
    min_reference_rows: int = 100
    max_categories: int = 50
    columns: tuple[str, ...] | None = None

    def describe(self) -> str:
        return (
            f"Each feature's distribution against the {self.reference_days} days before (PSI): "
            f"WARN from {self.warn_psi:g}, ERROR from {self.error_psi:g}."
        )

    def __post_init__(self):
        if not 0 < self.warn_psi <= self.error_psi:
            raise ValueError("drift: 0 < warn_psi <= error_psi")
        if self.reference_days < 1:
            raise ValueError("drift: reference_days must be at least 1")


@dataclass(frozen=True, kw_only=True)
class QualityRules:
    volume: VolumeRule | None = field(default_factory=VolumeRule)
    completeness: CompletenessRule | None = field(default_factory=CompletenessRule)
    late_arrivals: LateArrivalRule | None = field(default_factory=LateArrivalRule)
    uniqueness: UniquenessRule | None = field(default_factory=UniquenessRule)
    references: tuple[Reference, ...] = ()

    def describe_references(self) -> str:
        rates = {(r.warn_rate, r.error_rate) for r in self.references}
        limits = (
            f"WARN above {self.references[0].warn_rate:.0%} orphans, ERROR above {self.references[0].error_rate:.0%}"
            if len(rates) == 1
            else "limits per reference"
        )
        return (
            "Values pointing at a dimension must be known there as of the row's day: "
            + "; ".join(r.describe() for r in self.references)
            + f" ({limits}); orphans are counted and sampled."
        )

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
        rules = (self.volume, self.completeness, self.late_arrivals, self.uniqueness)
        return any(r is not None for r in rules) or bool(self.references)
