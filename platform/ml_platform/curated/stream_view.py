"""A stream feature view: per-entity aggregates over a sliding window of a stream source's events,
brought up to date by every micro-batch the source's raw run reads, and served online.

A row says: for this entity, as of `event_timestamp` (the newest event time known for it), over
the events in (`event_timestamp` - window, `event_timestamp`], these were the aggregates; it was
servable from `created_at`. One row per entity and micro-batch that brought it a new event (a
late event whose time is older than the entity's newest gives a row with the same timestamp and
corrected values, which wins from its `created_at` on: the point-in-time join's tie rule).

The view table is a feature view like the batch ones: `get_training_set` joins it point in
time (the greatest timestamp among rows created by the entity's time, then the TTL), so a
training row gets exactly the value an online lookup at that time got. `stream_update.py` says how a
micro-batch is applied; `stream_asset.py` runs it in the raw run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis.expr.datatypes as ibis_dt
import pandera.ibis as pa

from ml_platform import privacy
from ml_platform.contracts import table_contract as tc
from ml_platform.contracts.lineage import UtcTimestamp
from ml_platform.point_in_time.join import FeatureTable
from ml_platform.point_in_time.temporal import TemporalView

# Bookkeeping columns every stream view's contract has beside its keys and features.
TIMESTAMP = "event_timestamp"
CREATED = "created_at"
BATCH = "batch_ingested_at"
BATCH_DATE = "batch_date"
BOOKKEEPING = (TIMESTAMP, CREATED, BATCH, BATCH_DATE)


class StreamViewRow(pa.DataFrameModel):
    """The bookkeeping columns of every stream view: a view's contract subclasses this and adds its
    entity keys and one column per aggregate."""

    event_timestamp: UtcTimestamp = pa.Field(
        description="The entity's newest event time (never after the batch was read): the values are as of it."
    )
    created_at: UtcTimestamp = pa.Field(description="When the row became servable (the online store's write time).")
    batch_ingested_at: UtcTimestamp = pa.Field(description="When the micro-batch that made the row was read.")
    batch_date: ibis_dt.Date = pa.Field(description="UTC day the micro-batch was read: the partition.")

    class Config:
        strict = True


@dataclass(frozen=True, kw_only=True)
class StreamFeatureView:
    name: str
    description: str
    contract: type[pa.DataFrameModel]
    # The stream source (a `KafkaSourceSpec` in `declarations/sources/`) whose events it aggregates.
    source: str
    entity_columns: tuple[str, ...]
    window: dt.timedelta
    # Feature column -> SQL aggregate over the source's contract columns (one row per distinct
    # event in the window), e.g. "count(*) FILTER (WHERE event_type = 'purchase')". Sums of
    # floating-point values must be exact (DECIMAL) so any two builds agree to the last bit.
    aggregates: dict[str, str]
    # Values older than this at lookup time are null, online and offline; None: the window.
    ttl: dt.timedelta | None = None
    owner: str = "team:ml-platform"
    group: str = "realtime"

    # The names the point-in-time join and the writer use.
    timestamp_column = TIMESTAMP
    created_column = CREATED
    partition_column = BATCH_DATE

    def __post_init__(self):
        columns = tc.column_names(self.contract)
        expected = [*self.entity_columns, *BOOKKEEPING, *self.aggregates]
        if sorted(columns) != sorted(expected):
            raise ValueError(
                f"stream feature view {self.name}: {self.contract.__name__} must have exactly the entity columns,"
                f" {list(BOOKKEEPING)} and one column per aggregate: missing {sorted(set(expected) - set(columns))},"
                f" unexpected {sorted(set(columns) - set(expected))}"
            )
        if self.window <= dt.timedelta(0):
            raise ValueError(f"stream feature view {self.name}: window must be positive")
        if self.ttl is None:
            # A window's values describe the moment of the entity's newest event: once a window
            # has passed since, they are stale, online and offline alike.
            object.__setattr__(self, "ttl", self.window)

    @property
    def features(self) -> list[str]:
        return [c for c in tc.column_names(self.contract) if c in self.aggregates]

    @property
    def events_table(self) -> str:
        """The view's state: the distinct events that can still fall in some entity's window."""
        return f"{self.name}__events"

    @property
    def heads_table(self) -> str:
        """The view's state: each entity's newest event time."""
        return f"{self.name}__heads"

    def feature_table(self) -> FeatureTable:
        # No frontier table: every row is written once and never replaced, the join computes it.
        return FeatureTable(
            name=self.name,
            table=self.name,
            entity_columns=self.entity_columns,
            timestamp_column=TIMESTAMP,
            created_column=CREATED,
            ttl=self.ttl,
            use_frontier=False,
        )

    def temporal_view(self) -> TemporalView:
        # Snapshot accuracy only: the temporal join refuses its features, naming none as temporal.
        return TemporalView(
            name=self.name,
            entity_columns=self.entity_columns,
            features=(),
            pseudonymized=privacy.pseudonymized(self.contract, self.entity_columns),
        )
