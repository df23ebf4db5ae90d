"""What every source declares, whatever its kind: `SourceSpec`.

It holds the cleaned table's Pandera contract, dedup keys, how to read event time, how late
data may arrive, and how schema versions map onto the contract. Each kind (in
`ml_platform.ingestion`) subclasses it with where its data comes from: files landing in a
folder, a PostgreSQL table, a REST API. Source instances live in `ml_platform.declarations.sources`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal, get_args

import dagster as dg
import pandera.ibis as pa

from ml_platform.contracts.freshness import DAILY, FreshnessRule, Landing
from ml_platform.contracts.lineage import HistoryColumns, LineageColumns
from ml_platform.contracts.quality_rules import QualityRules

# strict: any change of columns fails; add_only: new columns allowed, removed ones fail;
# flexible: missing columns become null and extra ones are recorded.
SchemaPolicy = Literal["strict", "add_only", "flexible"]
SCHEMA_POLICIES: tuple[str, ...] = get_args(SchemaPolicy)


@dataclass(frozen=True, kw_only=True)
class SourceSpec:
    name: str
    description: str
    owner: str
    contract: type[pa.DataFrameModel]
    key_columns: tuple[str, ...]
    # Column holding event time. None makes a snapshot source: each landing day's data is a full
    # snapshot, and the clean table keeps every version with valid_from / valid_to (SCD2).
    event_time_column: str | None = None
    # Cleaned-table column holding the UTC date of event time: the clean partition column.
    partition_column: str | None = None
    # Zone of timestamps written without an offset.
    event_time_zone: str = "UTC"
    late_tolerance_days: int = 3
    # contract column -> other names it had in older or newer schema versions.
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # version name -> the exact set of columns data of that version carries; the last is current.
    schema_versions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    schema_policy: SchemaPolicy = "flexible"
    # Which copy of a key wins: the highest value of this column (e.g. updated_at); by default
    # the latest ingested copy.
    version_column: str | None = None
    # A non-null value here marks a row deleted at the source: the key leaves the clean table.
    soft_delete_column: str | None = None
    # The blocking check fails when more than this share of a partition's rows is quarantined.
    max_quarantine_fraction: float = 0.05
    # Texts that mean "no value" in every column (e.g. 'NA', '\\N'): read as null before typing.
    # None by default: a literal NA (Namibia, a product code) stays a value unless declared.
    null_values: tuple[str, ...] = ()
    # Per column (its contract name), the texts that mean "no value" there, instead of
    # `null_values`: {"amount": ("NA", "-")}, or {"country": ()} to keep NA a value in one column.
    column_null_values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Thresholds of the clean table's quality checks (volume, completeness), per source.
    quality: QualityRules = field(default_factory=QualityRules)
    # How often data is expected to land: the raw asset's landing_freshness check and Dagster's
    # freshness policy on its raw and clean assets (the UI's overdue assets). DAILY by default.
    freshness: FreshnessRule = DAILY
    tags: dict[str, str] = field(default_factory=dict)
    # When the clean table's automation may run (a cron schedule, UTC): a partition's first build
    # at once, then at most one run per partition between two ticks. None: on every raw update. A stream lands every few seconds and
    # its real-time features read raw batches directly, so its clean day is rebuilt on a rhythm
    # rather than holding the warehouse's one writer after every micro-batch.
    clean_schedule: str | None = None

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ValueError(f"source name {self.name!r} must be a valid identifier")
        if (self.event_time_column is None) != (self.partition_column is None):
            raise ValueError(f"source {self.name}: event_time_column and partition_column go together")
        if self.schema_policy not in SCHEMA_POLICIES:
            raise ValueError(f"source {self.name}: schema_policy must be one of {SCHEMA_POLICIES}")
        contract_columns = set(self.contract.to_schema().columns)
        named = (
            *self.key_columns,
            *self.aliases,
            self.event_time_column,
            self.partition_column,
            self.version_column,
            self.soft_delete_column,
            *self.column_null_values,
        )
        for column in named:
            if column is not None and column not in contract_columns:
                raise ValueError(f"source {self.name}: {column!r} is not a column of {self.contract.__name__}")

    @property
    def is_partitioned(self) -> bool:
        return self.partition_column is not None

    @property
    def raw_table(self) -> str:
        return f"raw_{self.name}"

    @property
    def clean_table(self) -> str:
        return f"clean_{self.name}"

    @property
    def quarantine_table(self) -> str:
        return f"quarantine_{self.name}"

    @property
    def landing_place(self) -> str:
        """Where the source's data lands, in words (its landing freshness check names it)."""
        return self.raw_table

    def newest_landing(self, instance: dg.DagsterInstance) -> Landing | None:
        """The newest data that landed: by default the latest materialization of the raw asset, the
        last extraction that ran (a database's or API's data exists for the platform only once
        extracted). A kind whose data lands before any run (files) says so itself."""
        entry = instance.get_latest_materialization_event(dg.AssetKey(self.raw_table))
        if entry is None:
            return None
        partition = entry.dagster_event.partition if entry.dagster_event else None
        what = f"{self.raw_table}" + (f" partition {partition}" if partition else "") + f" (run {entry.run_id[:8]})"
        return Landing(what, dt.datetime.fromtimestamp(entry.timestamp, dt.UTC))

    @property
    def derived_columns(self) -> set[str]:
        """Contract columns the platform computes rather than reads from the source."""
        return set(LineageColumns.to_schema().columns) | {self.partition_column} | self.history_columns

    @property
    def history_columns(self) -> set[str]:
        """valid_from / valid_to / is_current of snapshot sources, derived after staging."""
        return set() if self.is_partitioned else set(HistoryColumns.to_schema().columns)

    @property
    def source_columns(self) -> list[str]:
        """Contract columns read from the source's records."""
        return [c for c in self.contract.to_schema().columns if c not in self.derived_columns]

    @property
    def current_columns(self) -> tuple[str, ...] | None:
        """Columns of the current (last declared) schema version, if versions are declared."""
        return list(self.schema_versions.values())[-1] if self.schema_versions else None

    def null_markers(self, column: str) -> tuple[str, ...]:
        """The texts read as NULL in `column` (a contract column) before typing."""
        return self.column_null_values.get(column, self.null_values)

    def names_for(self, column: str) -> tuple[str, ...]:
        return (column, *self.aliases.get(column, ()))

    def equivalent_names(self, name: str) -> tuple[str, ...]:
        """All names a source column may carry (a contract column and its aliases)."""
        return next((self.names_for(c) for c in self.source_columns if name in self.names_for(c)), (name,))

    def known_columns(self) -> set[str]:
        return {name for column in self.source_columns for name in self.names_for(column)}
