"""What a partition declares it reads (`Read`), and the metadata its writers record for automation:
the days a snapshot history's write may have changed, the upstream days an unpartitioned build read,
a label partition written before it was final."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# A snapshot history's materialization says from which day on its versions may have changed.
CHANGED_FROM = "ml_platform/changed_from"
# An unpartitioned reader's materialization says which upstream days it read: {table: [first, last]}.
READ_DAYS = "ml_platform/read_days"
# A label partition written before it was final is observed with this metadata after its write.
NOT_FINAL = "ml_platform/not_final"


@dataclass(frozen=True)
class Read:
    """What a partition of a table reads of one upstream table.

    - A daily-partitioned upstream: the days from `first` to `last`, as offsets from the partition's
      own day (`(-30, -1)`: the 30 days before it); `first=None`: every day before, `last=None`:
      every day after.
    - An unpartitioned snapshot history (versions with `valid_from` / `valid_to`): `as_of`, the days
      whose versions it reads, as offsets (`(-1,)`: the versions valid the day before).
    - An unpartitioned table read whole: `first=None, last=None`, no `as_of`.
    - `until_final`: a clock, read only to decide whether a label partition is final; once the
      partition is written final, a newer clock changes nothing.
    - `recorded`: for an unpartitioned reader (a training set), only the upstream days its last
      build recorded in its metadata (`READ_DAYS`).
    - `pooled`: the upstream is written in the warehouse pool, one writer at a time (every layer
      but a parallel raw run, which commits outside it).
    """

    table: str
    first: int | None = 0
    last: int | None = 0
    as_of: tuple[int, ...] = ()
    until_final: bool = False
    recorded: bool = False
    pooled: bool = True

    def __post_init__(self):
        if self.first is not None and self.last is not None and self.first > self.last:
            raise ValueError(f"read of {self.table}: days must be (first, last) with first <= last")
        if self.as_of and (self.first, self.last) != (None, None):
            raise ValueError(f"read of {self.table}: a snapshot read as of days has no window of days")

    @classmethod
    def days(cls, table: str, first: int | None, last: int | None, until_final: bool = False) -> Read:
        return cls(table, first, last, until_final=until_final)

    @classmethod
    def snapshot(cls, table: str, *as_of: int) -> Read:
        return cls(table, None, None, as_of=tuple(as_of))

    @classmethod
    def whole(cls, table: str, recorded: bool = False, pooled: bool = True) -> Read:
        return cls(table, None, None, recorded=recorded, pooled=pooled)

    @property
    def windowed(self) -> bool:
        """Reads a window of a partitioned upstream's days (not a snapshot, not the whole table)."""
        return not self.as_of and (self.first, self.last) != (None, None)


def mapping_window(reads: Iterable[Read]) -> tuple[int | None, int | None]:
    """The one window of days covering several reads of the same partitioned table (Dagster's
    dependency has one partition mapping per table)."""
    reads = list(reads)
    first = None if any(r.first is None for r in reads) else min(r.first for r in reads)
    last = None if any(r.last is None for r in reads) else max(r.last for r in reads)
    return first, last
