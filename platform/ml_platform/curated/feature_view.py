"""A feature view: a curated table whose rows are feature values of an entity as of a time.

Besides its contract and SQL, a view names its entity key columns, the timestamp each row
describes (`as_of`), the column saying when the row's information became available
(`created_at`: when its inputs landed) and a TTL. That is what point-in-time retrieval needs:
`ml_platform.training.get_training_set` asks for features by `view:feature` name and never
returns a value from the future, nor one whose inputs landed after the entity's time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ml_platform.contracts import table_contract as tc
from ml_platform.curated.table import CuratedTable
from ml_platform.training.point_in_time import FeatureTable


@dataclass(frozen=True, kw_only=True)
class FeatureView(CuratedTable):
    timestamp_column: str
    created_column: str = "created_at"
    # Values older than this at the entity's time are NULL; None keeps them forever.
    ttl: dt.timedelta | None = None

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

    @property
    def features(self) -> list[str]:
        """The feature columns: everything but keys, timestamps and the partition column."""
        bookkeeping = {*self.entity_columns, self.timestamp_column, self.created_column, self.partition_column}
        return [c for c in tc.column_names(self.contract) if c not in bookkeeping]

    def feature_table(self) -> FeatureTable:
        return FeatureTable(
            name=self.name,
            table=self.name,
            entity_columns=self.entity_columns,
            timestamp_column=self.timestamp_column,
            created_column=self.created_column,
            ttl=self.ttl,
        )
