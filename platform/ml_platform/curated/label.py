"""Labels: what happened after an as-of time, written only once it can no longer change.

A label row says, for an entity as of a time, what happened in the `horizon_days` that followed
(no purchase in 30 days, a failure within 24 hours). Until the horizon has passed the answer is
unknown, and a label written early would be wrong for every entity whose outcome is still to
come (a churn label of yesterday says "churned" for everyone). So a label partition D holds
rows only once it is *final*:

- its outcome window covers the data of days D … D + horizon_days - 1;
- data of a day can still arrive `settle_days` late (the outcome source's late tolerance);
- so the rows of D are final once a file has landed on day D + horizon_days + settle_days or
  later: the platform's clock is the newest landing day in the outcome source's raw table
  (`clock_table`, e.g. raw_telemetry: its partitions are landing days). Before that, the
  partition is written empty.

What a partition reads is declared like any curated table's (`reads`: the days of its horizon,
or all history before it for who is a customer), plus the clock, read only to decide finality:
the clock's landing days from D + horizon_days + settle_days on (`clock_read`). A partition
written before it was final is observed as not final (`NOT_FINAL`, an AssetObservation after its
write), and is requested again when a landing day that can make it final is written; once written
final, only an update of what it reads rebuilds it: a label is not recomputed every time a new day
lands (thirty runs a day for churn). A partition never written is built once its clock has landed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ml_platform.automation import Read
from ml_platform.contracts import table_contract as tc
from ml_platform.contracts.freshness import DAILY, FreshnessRule
from ml_platform.contracts.quality_rules import DriftRule
from ml_platform.curated.table import LATE_ARRIVAL_DAYS, CuratedTable
from ml_platform.warehouse import sql


@dataclass(frozen=True, kw_only=True)
class Label(CuratedTable):
    # The entity's timestamp the label is as of (the training set's `event_timestamp`).
    timestamp_column: str
    # The outcome column (0/1 or boolean) models learn.
    label_column: str
    # Days of outcome data after the partition's day the label looks at.
    horizon_days: int
    # How late the outcome's data may arrive: the source's late tolerance.
    settle_days: int
    # Other columns of the label row that feature views join on (e.g. location, for the weather).
    join_columns: tuple[str, ...] = ()
    # The raw table whose newest landing day says how far the platform's data reaches (the outcome
    # source's: its partitions are landing days); default: the first table read.
    clock_table: str | None = None
    group: str = "labels"
    # A partition matures once a day (when its outcome day lands), however often the outcome's
    # source lands: due daily, not at the pace of the table it reads.
    freshness: FreshnessRule | None = DAILY
    # Outcomes are not features: their share moving is what a label is for.
    drift: DriftRule | None = None

    def __post_init__(self):
        super().__post_init__()
        columns = tc.column_names(self.contract)
        for role, column in (
            ("timestamp_column", self.timestamp_column),
            ("label_column", self.label_column),
            *(("join column", c) for c in self.join_columns),
        ):
            if column not in columns:
                raise ValueError(f"label {self.name}: {role} {column!r} is not a column of {self.contract.__name__}")
        if self.horizon_days < 1 or self.settle_days < 0:
            raise ValueError(f"label {self.name}: horizon_days must be >= 1 and settle_days >= 0")

    @property
    def entity_row_columns(self) -> tuple[str, ...]:
        """The label row's columns a training set's entity rows carry besides time and label."""
        return (*self.entity_columns, *self.join_columns)

    @property
    def matures_after_days(self) -> int:
        """Days after its own day when a partition becomes final."""
        return self.horizon_days + self.settle_days

    @property
    def clock(self) -> str:
        """The table whose newest landing day is the platform's clock (`clock_table`, else the first read)."""
        first = self.reads[0]
        return self.clock_table or (first if isinstance(first, str) else first.table)

    @property
    def clock_read(self) -> Read:
        """The clock's days that can say a partition is final (module docstring)."""
        return Read.days(self.clock, self.matures_after_days, None, until_final=True)

    @property
    def inputs(self) -> tuple[Read, ...]:
        return (*super().inputs, self.clock_read)

    @property
    def same_day_tables(self) -> list[str]:
        # Never requested along with an upstream run: that run does not bring its clock, so the
        # partition would be written before it is final (empty) and written again once it is.
        return []

    @property
    def automated_days(self) -> int | None:
        # A landing day makes final the partition `matures_after_days` before it, and data lands at
        # most LATE_ARRIVAL_DAYS late: every partition that can mature or change lies in these
        # latest days. Older history is backfilled (without the bound, the first landing would
        # request every partition since the start date whose clock has passed).
        return self.matures_after_days + LATE_ARRIVAL_DAYS + 1

    def not_final_days(self, con, window) -> list[str]:
        """The days of `window` not final yet (their clock has not passed), as partition keys."""
        newest = con.execute(f"SELECT max(landing_date) FROM {sql.ident(self.clock)}").fetchone()[0]
        start, end = window
        first = start if newest is None else max(start, newest - dt.timedelta(days=self.matures_after_days - 1))
        return [(first + dt.timedelta(days=i)).isoformat() for i in range((end - first).days + 1)]

    def select_sql(self, window) -> str:
        rows = sql.render(self.sql, start=window[0], end=window[1], horizon_days=self.horizon_days)
        clock = sql.ident(self.clock)
        return (
            f"SELECT * FROM ({rows}) WHERE {sql.ident(self.partition_column)}"
            f" <= (SELECT max(landing_date) FROM {clock}) - {sql.literal(self.matures_after_days)}"
        )
