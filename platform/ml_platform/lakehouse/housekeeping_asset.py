"""The `lake_housekeeping` asset and its schedule: every lake table's crowded partitions compacted
(`compaction.compact`: a partition of at least `ML_PLATFORM_LAKE_COMPACT_FILES` files rewritten as
one), then its old snapshots expired (older than the retention from
`ML_PLATFORM_LAKE_RETENTION_HOURS`, or beyond the newest `ML_PLATFORM_LAKE_MAX_SNAPSHOTS`) and
unreachable files removed (`housekeeping.clean_up`); both can be set per run in the launchpad
(`compact_min_files`, `retention_hours`).

It touches no warehouse table, so it takes no warehouse pool slot, and it may run beside any write:
a commit racing the expiry is looked at again, and files younger than the retention are kept.
"""

# No `from __future__ import annotations`: Dagster reads the config class from the function's
# annotations, which must be the class, not its name.
import datetime as dt

import dagster as dg
from pydantic import Field

from ml_platform import settings
from ml_platform.lakehouse.compaction import compact
from ml_platform.lakehouse.housekeeping import clean_up, lake_tables
from ml_platform.lakehouse.working_copy import run_database

ASSET = "lake_housekeeping"


class HousekeepingConfig(dg.Config):
    retention_hours: float | None = Field(
        default=None,
        description="Snapshots older than this (not current, not tagged) and files no snapshot names are removed;"
        " unset: ML_PLATFORM_LAKE_RETENTION_HOURS (default 168).",
    )
    compact_min_files: int | None = Field(
        default=None,
        description="A partition holding at least this many data files is rewritten as one;"
        " unset: ML_PLATFORM_LAKE_COMPACT_FILES (default 8).",
    )


@dg.asset(
    name=ASSET,
    group_name="lake",
    kinds={"iceberg"},
    description="Compacts the lake tables' crowded partitions, expires their snapshots older than the retention"
    " and removes files no snapshot names.",
)
def lake_housekeeping(context: dg.AssetExecutionContext, config: HousekeepingConfig) -> dg.MaterializeResult:
    hours = settings.lake_retention_hours() if config.retention_hours is None else config.retention_hours
    min_files = settings.lake_compact_files() if config.compact_min_files is None else config.compact_min_files
    retention = dt.timedelta(hours=hours)
    names = lake_tables()
    with run_database(context.run_id) as con:
        compacted = {name: compact(con, name, min_files, context.run_id) for name in names}
    for table in compacted.values():
        if table.partitions or table.partitions_dropped:
            context.log.info(
                f"{table.table}: {table.partitions} partitions compacted ({table.files_replaced} files into one each),"
                f" {table.partitions_dropped} left to a writer that replaced them meanwhile"
            )
    done = [clean_up(name, retention) for name in names]
    for table in done:
        context.log.info(
            f"{table.table}: {table.snapshots_expired} snapshots expired ({table.snapshots_kept} kept),"
            f" {table.files_removed} files removed ({table.bytes_removed} bytes)"
        )
    return dg.MaterializeResult(
        metadata={
            "retention_hours": hours,
            "compact_min_files": min_files,
            "tables": len(done),
            "partitions_compacted": sum(c.partitions for c in compacted.values()),
            "files_compacted": sum(c.files_replaced for c in compacted.values()),
            "snapshots_expired": sum(t.snapshots_expired for t in done),
            "files_removed": sum(t.files_removed for t in done),
            "bytes_removed": sum(t.bytes_removed for t in done),
            "per_table": dg.MetadataValue.json(
                {
                    t.table: {
                        "snapshots_expired": t.snapshots_expired,
                        "snapshots_kept": t.snapshots_kept,
                        "files_removed": t.files_removed,
                        "bytes_removed": t.bytes_removed,
                        "partitions_compacted": compacted[t.table].partitions,
                        "files_compacted": compacted[t.table].files_replaced,
                    }
                    for t in done
                }
            ),
        }
    )


def housekeeping_schedule() -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name=f"{ASSET}_schedule",
        target=dg.AssetSelection.assets(ASSET),
        cron_schedule=settings.lake_housekeeping_cron(),
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Compacts crowded partitions of the lake tables, expires old snapshots and removes files no"
        " snapshot names.",
    )
