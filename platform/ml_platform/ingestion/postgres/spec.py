"""The PostgreSQL source kind: rows of one table, extracted incrementally by an updated_at mark.

Each row lands in the raw partition of its UTC creation day (`event_time_column`, e.g.
created_at), so where a row lands never depends on when it was extracted. Every extraction of
a day appends only row versions the raw table does not hold yet: those updated after the
day's high-water mark (the newest `updated_at_column` already in raw) minus `overlap_minutes`,
the overlap catching rows committed late with an older timestamp. Updates and soft deletes
arrive as new versions; the clean layer keeps the highest `updated_at_column` per key.

The source must bump `updated_at_column` on every change (including soft deletes): a change
that keeps it is invisible to the incremental extraction. Hard deletes are not detected.

Connection settings come from the environment, through Dagster's EnvVar: `<prefix>_HOST`,
`<prefix>_PORT`, `<prefix>_DB`, `<prefix>_USER` and `<prefix>_PASSWORD`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ml_platform.raw.spec import SourceSpec

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV_PREFIX = re.compile(r"^[A-Z][A-Z0-9_]*$")
# Connection setting -> suffix of its environment variable.
CONNECTION_SETTINGS = {"host": "HOST", "port": "PORT", "db": "DB", "user": "USER", "password": "PASSWORD"}


@dataclass(frozen=True, kw_only=True)
class PostgresSourceSpec(SourceSpec):
    # Schema-qualified source table, e.g. "public.transactions".
    table: str
    # High-water-mark column, bumped by the source on every change; also the version column.
    updated_at_column: str
    overlap_minutes: int = 10
    connection_env_prefix: str = "ML_PLATFORM_PG"

    def __post_init__(self):
        # updated_at is what makes a copy win in the clean layer: it is the version column.
        if self.version_column is None:
            object.__setattr__(self, "version_column", self.updated_at_column)
        super().__post_init__()
        parts = self.table.split(".")
        if len(parts) != 2 or not all(_IDENTIFIER.match(p) for p in parts):
            raise ValueError(f"source {self.name}: table {self.table!r} must be schema-qualified, like 'public.orders'")
        if not self.is_partitioned:
            raise ValueError(
                f"source {self.name}: a PostgreSQL source needs event_time_column (the creation time that picks "
                "each row's partition) and partition_column"
            )
        if self.version_column != self.updated_at_column:
            raise ValueError(
                f"source {self.name}: version_column must be the updated_at_column ({self.updated_at_column!r})"
            )
        source_columns = set(self.source_columns)
        for role, column in (
            ("updated_at_column", self.updated_at_column),
            ("event_time_column", self.event_time_column),
            ("soft_delete_column", self.soft_delete_column),
            *(("key column", k) for k in self.key_columns),
        ):
            if column is None:
                continue
            if column not in source_columns:
                raise ValueError(
                    f"source {self.name}: {role} {column!r} is not a source column of {self.contract.__name__}"
                )
            if not _IDENTIFIER.match(column):
                raise ValueError(f"source {self.name}: {role} {column!r} must be a plain SQL identifier")
        if self.aliases:
            raise ValueError(f"source {self.name}: aliases are not supported for PostgreSQL sources (rename in SQL)")
        if (
            isinstance(self.overlap_minutes, bool)
            or not isinstance(self.overlap_minutes, int)
            or self.overlap_minutes < 0
        ):
            raise ValueError(f"source {self.name}: overlap_minutes must be a non-negative integer")
        if not _ENV_PREFIX.match(self.connection_env_prefix):
            raise ValueError(
                f"source {self.name}: connection_env_prefix {self.connection_env_prefix!r} must be upper case, like ML_PLATFORM_PG"
            )

    @property
    def schema_name(self) -> str:
        return self.table.split(".")[0]

    @property
    def table_name(self) -> str:
        return self.table.split(".")[1]

    @property
    def env_vars(self) -> dict[str, str]:
        """Connection setting -> the environment variable that holds it."""
        return {setting: f"{self.connection_env_prefix}_{suffix}" for setting, suffix in CONNECTION_SETTINGS.items()}

    @property
    def resource_key(self) -> str:
        return f"{self.name}_postgres"
