"""The declarative description of a file source, from which the platform derives its assets.

A spec says what lands where, what the cleaned table must look like (its Pandera contract),
how to deduplicate, how to read event time, how late data may arrive and how schema versions
map onto the contract. The factories in `ml_platform.ingestion` turn a spec into the raw and
clean assets, their checks, the quarantine table and the landing sensor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandera.ibis as pa

from ml_platform.contracts.lineage import LineageColumns

FILE_FORMATS = ("csv", "jsonl", "parquet")


@dataclass(frozen=True)
class FileSourceSpec:
    name: str
    description: str
    owner: str
    contract: type[pa.DataFrameModel]
    key_columns: tuple[str, ...]
    # Column holding event time; None makes a snapshot source (no time partitions).
    event_time_column: str | None = None
    # Cleaned-table column holding the UTC date of event time: the clean partition column.
    partition_column: str | None = None
    # Zone of timestamps written without an offset.
    event_time_zone: str = "UTC"
    late_tolerance_days: int = 3
    formats: tuple[str, ...] = FILE_FORMATS
    # contract column -> other names it had in older or newer schema versions.
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # version name -> the exact set of columns files of that version carry.
    schema_versions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Blocking check fails when more than this share of a partition's rows is quarantined.
    max_quarantine_fraction: float = 0.05
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ValueError(f"source name {self.name!r} must be a valid identifier")
        unknown = set(self.formats) - set(FILE_FORMATS)
        if unknown:
            raise ValueError(f"source {self.name}: unsupported formats {sorted(unknown)}")
        if (self.event_time_column is None) != (self.partition_column is None):
            raise ValueError(f"source {self.name}: event_time_column and partition_column go together")
        contract_columns = set(self.contract.to_schema().columns)
        for column in (*self.key_columns, *self.aliases, self.event_time_column, self.partition_column):
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
    def landing_folder(self) -> str:
        return self.name

    @property
    def source_columns(self) -> list[str]:
        """Contract columns read from landed records (not lineage, not derived)."""
        derived = set(LineageColumns.to_schema().columns) | {self.partition_column}
        return [c for c in self.contract.to_schema().columns if c not in derived]

    def names_for(self, column: str) -> tuple[str, ...]:
        return (column, *self.aliases.get(column, ()))

    def known_columns(self) -> set[str]:
        return {name for column in self.source_columns for name in self.names_for(column)}
