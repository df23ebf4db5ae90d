"""A feature view: a curated table whose rows are feature values of an entity as of a time.

Besides its contract and SQL, a view names its entity key columns, the timestamp each row
describes (`as_of`), the column saying when the row's information became available
(`created_at`: when its inputs landed) and a TTL. That is what point-in-time retrieval needs:
`ml_platform.training.get_training_set` asks for features by `view:feature` name and never
returns a value from the future, nor one whose inputs landed after the entity's time.

Those rows give *snapshot* accuracy: a feature as of the last midnight before the entity's time.
A view may also declare `temporal` versions of some features (`TemporalFeature`: a source table,
an aggregate and a window), computed as of the entity row's exact time from the source rows
available then: `get_training_set(..., accuracy="temporal")`. They are keyed by the view's entity
columns, which the source table must have under the same names.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ml_platform import privacy
from ml_platform.contracts import table_contract as tc
from ml_platform.curated.table import CuratedTable
from ml_platform.point_in_time.frontier import available_since, refresh_frontier
from ml_platform.point_in_time.join import FeatureTable
from ml_platform.point_in_time.temporal import TemporalFeature, TemporalView


@dataclass(frozen=True, kw_only=True)
class FeatureView(CuratedTable):
    timestamp_column: str
    created_column: str = "created_at"
    # Values older than this at the entity's time are NULL; None keeps them forever.
    ttl: dt.timedelta | None = None
    # Features also served with temporal accuracy (as of the entity's exact time), by feature name.
    temporal: tuple[TemporalFeature, ...] = ()

    def __post_init__(self):
        super().__post_init__()
        if not self.entity_columns:
            raise ValueError(f"feature view {self.name}: entity_columns must name its key column(s)")
        columns = tc.column_names(self.contract)
        for role, column in (("timestamp_column", self.timestamp_column), ("created_column", self.created_column)):
            if column not in columns:
                raise ValueError(
                    f"feature view {self.name}: {role} {column!r} is not a column of {self.contract.__name__}"
                )
        names = [t.name for t in self.temporal]
        unknown = [n for n in names if n not in self.features]
        if unknown:
            raise ValueError(f"feature view {self.name}: temporal {unknown} are not features of it: {self.features}")
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"feature view {self.name}: temporal {duplicated} declared more than once")

    @property
    def features(self) -> list[str]:
        """The feature columns: everything but keys, timestamps and the partition column."""
        bookkeeping = {*self.entity_columns, self.timestamp_column, self.created_column, self.partition_column}
        return [c for c in tc.column_names(self.contract) if c not in bookkeeping]

    def write(self, con, window, empty: bool = False) -> dict[str | None, int]:
        """Replace the window's rows and keep the view's frontier (`point_in_time.frontier`) in step:
        only rows available from the earliest changed row on are recomputed."""
        self.table.create(con)
        scope = self.table.scope(window)
        before = available_since(con, self.name, self.timestamp_column, self.created_column, scope)
        partition_rows = super().write(con, window, empty)
        after = available_since(con, self.name, self.timestamp_column, self.created_column, scope)
        since = min((s for s in (before, after) if s is not None), default=None)
        refresh_frontier(con, self.name, self.entity_columns, self.timestamp_column, self.created_column, since)
        return partition_rows

    def feature_table(self) -> FeatureTable:
        return FeatureTable(
            name=self.name,
            table=self.name,
            entity_columns=self.entity_columns,
            timestamp_column=self.timestamp_column,
            created_column=self.created_column,
            ttl=self.ttl,
        )

    def temporal_view(self) -> TemporalView:
        return TemporalView(
            name=self.name,
            entity_columns=self.entity_columns,
            features=self.temporal,
            pseudonymized=privacy.pseudonymized(self.contract, self.entity_columns),
        )
