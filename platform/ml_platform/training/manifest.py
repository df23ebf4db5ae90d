"""What a training set was built from, recorded so it can be rebuilt identically or shown stale.

For the label table and every feature view a set reads, the manifest lists each partition
that could contribute a row (for a view: from the oldest entity time minus its TTL to the
newest entity time), with its row count, a content fingerprint (`partition_fingerprints`) and
the Dagster data version and run of its latest materialization. Rebuilding later gives the same
rows exactly when `manifest_changes` finds nothing: every input partition still holds what it held.
Each row also carries its input's window, so the check needs nothing but the manifest table.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import dagster as dg
import duckdb

from ml_platform.contracts.writer import partition_fingerprints, write_whole
from ml_platform.warehouse import sql
from ml_platform.warehouse.sql import DateWindow

DATA_VERSION_TAG = "dagster/data_version"
PAGE = 1000
COLUMNS = (
    "input VARCHAR",
    "partition_column VARCHAR",
    "window_first DATE",
    "window_last DATE",
    "partition VARCHAR",
    "rows BIGINT",
    "fingerprint VARCHAR",
    "data_version VARCHAR",
    "run_id VARCHAR",
    # The input's Iceberg snapshot the set read (lake tables, ML_PLATFORM_LAKE_TABLES; else NULL):
    # `rebuild_training_set` reads them again.
    "snapshot_id BIGINT",
)


@dataclass(frozen=True)
class ManifestInput:
    """One table the training set read, and which of its partitions."""

    table: str
    partition_column: str
    window: DateWindow


def view_window(entity_days: DateWindow, ttl: dt.timedelta | None) -> DateWindow | None:
    """The partitions of a view that can hold a value for entity times within `entity_days`:
    from the first day minus the TTL (and a day, for values timestamped at the day's end) to the
    last day plus one. Without a TTL a value of any age counts, so every partition up to then."""
    last = entity_days[1] + dt.timedelta(days=1)
    if ttl is None:
        return dt.date.min, last
    return entity_days[0] - dt.timedelta(days=math.ceil(ttl / dt.timedelta(days=1)) + 1), last


def build_manifest(
    con: duckdb.DuckDBPyConnection,
    instance: dg.DagsterInstance,
    inputs: list[ManifestInput],
    snapshots: dict[str, int] | None = None,
) -> list[tuple]:
    """Manifest rows (see COLUMNS), one per input partition; `snapshots`: the lake snapshot read of each input."""
    rows = []
    for item in inputs:
        fingerprints = partition_fingerprints(con, item.table, item.partition_column, item.window)
        versions = _latest_versions(instance, item.table, list(fingerprints))
        for partition, (count, fingerprint) in fingerprints.items():
            version, run_id = versions.get(partition, (None, None))
            rows.append(
                (
                    item.table,
                    item.partition_column,
                    *item.window,
                    partition,
                    count,
                    fingerprint,
                    version,
                    run_id,
                    (snapshots or {}).get(item.table),
                )
            )
    return rows


def write_manifest(con: duckdb.DuckDBPyConnection, table: str, rows: list[tuple]) -> None:
    """The manifest `rows` as the whole of `table`, in the caller's transaction (`writer.write_whole`)."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _manifest_rows ({', '.join(COLUMNS)})")
    if rows:
        con.executemany(f"INSERT INTO _manifest_rows VALUES ({', '.join('?' * len(COLUMNS))})", rows)
    write_whole(con, table, "SELECT * FROM _manifest_rows")


def manifest_snapshots(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, int]:
    """The lake snapshot of each input the manifest `table` recorded (inputs on the lake only)."""
    return dict(
        con.execute(
            f"SELECT DISTINCT input, snapshot_id FROM {sql.ident(table)} WHERE snapshot_id IS NOT NULL ORDER BY 1"
        ).fetchall()
    )


def manifest_changes(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """How the inputs differ today from what the manifest `table` recorded, one line per partition
    (changed, gone, or new within the recorded window); empty when a rebuild would be identical."""
    recorded: dict[str, dict[str, tuple[int, str]]] = {}
    inputs: dict[str, ManifestInput] = {}
    for name, column, first, last, partition, rows, fingerprint in con.execute(
        "SELECT input, partition_column, window_first, window_last, partition, rows, fingerprint"
        f" FROM {sql.ident(table)} ORDER BY 1, 5"
    ).fetchall():
        inputs[name] = ManifestInput(name, column, (first, last))
        recorded.setdefault(name, {})[partition] = (rows, fingerprint)
    changes = []
    for name, item in inputs.items():
        before = recorded[name]
        now = partition_fingerprints(con, item.table, item.partition_column, item.window)
        for partition in sorted(set(before) | set(now)):
            if partition not in now:
                changes.append(f"{name} {partition}: gone (had {before[partition][0]} rows)")
            elif partition not in before:
                changes.append(f"{name} {partition}: new ({now[partition][0]} rows)")
            elif before[partition] != now[partition]:
                changes.append(
                    f"{name} {partition}: content changed ({before[partition][0]} -> {now[partition][0]} rows)"
                )
    return changes


def _latest_versions(instance: dg.DagsterInstance, asset: str, partitions: list[str]) -> dict[str, tuple]:
    """The data version and run of each partition's latest materialization."""
    if not partitions:
        return {}
    found: dict[str, tuple] = {}
    records_filter = dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=partitions)
    cursor = None
    # Newest first, a page at a time, until every partition's latest is found.
    while len(found) < len(partitions):
        page = instance.fetch_materializations(records_filter, limit=PAGE, cursor=cursor)
        for record in page.records:
            event = record.event_log_entry
            materialization = event.asset_materialization
            if materialization.partition not in found:
                found[materialization.partition] = (materialization.tags.get(DATA_VERSION_TAG), event.run_id)
        if not page.has_more:
            break
        cursor = page.cursor
    return found
