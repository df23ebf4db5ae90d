"""Labels: what happened after an as-of time, written only once it can no longer change.

A label row says, for an entity as of a time, what happened in the `horizon_days` that followed
(no purchase in 30 days, a failure within 24 hours). Until the horizon has passed the answer is
unknown, and a label written early would be wrong for every entity whose outcome is still to
come (a churn label of yesterday says "churned" for everyone). So a label partition D holds
rows only once it is *final*:

- its outcome window covers the data of days D … D + horizon_days - 1;
- data of a day can still arrive `settle_days` late (the outcome source's late tolerance);
- so the rows of D are final once a file has landed on day D + horizon_days + settle_days or
  later: the platform's clock is the newest landing day of the outcome's table (`clock_table`).
  Before that, the partition is written empty.

The partition's automation fires when the outcome table's day D + horizon_days + settle_days
updates (`trigger_days`), the day that makes it final: a label is written once, when it
matures, and not recomputed by every new day inside its horizon (thirty runs a day for churn).
"""

from __future__ import annotations

from dataclasses import dataclass

from ml_platform.contracts import table_contract as tc
from ml_platform.contracts.freshness import DAILY, FreshnessRule
from ml_platform.contracts.quality_rules import DriftRule
from ml_platform.curated.table import CuratedTable
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
    # Table whose newest landing day says how far the platform's data reaches; default: reads[0].
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
    def trigger_days(self) -> tuple[int, int]:
        return self.matures_after_days, self.matures_after_days

    @property
    def automated_days(self) -> int | None:
        # Only the day that matures is requested (trigger_days); no bound needed.
        return None

    def select_sql(self, window) -> str:
        rows = sql.render(self.sql, start=window[0], end=window[1], horizon_days=self.horizon_days)
        clock = sql.ident(self.clock_table or self.reads[0])
        return (
            f"SELECT * FROM ({rows}) WHERE {sql.ident(self.partition_column)}"
            f" <= (SELECT max(landing_date) FROM {clock}) - {sql.literal(self.matures_after_days)}"
        )
