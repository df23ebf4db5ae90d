"""Compaction of lake tables: a partition's many small files rewritten as one file.

Writers that commit often add a file per commit: a stream's raw batches, its applied batches and
its feature views get one per micro-batch and day. Every reader lists and opens each of them, and
each is a footer to read and an object to GET on S3. `compact` rewrites every partition (a day, or
a scope's day) that holds at least `min_files` data files into one file with the same rows, and
commits it as one change of the table: those files out, the new one in (an Iceberg overwrite, rows
unchanged). The superseded files stay readable by the older snapshots until housekeeping expires
them, as any replaced file does.

Compaction races the writers: a commit that loses to another writer's is redone from the new head
as long as that head still holds every file compacted (the new file holds exactly their rows, so
it replaces them in any snapshot that has them: a stream's appends meanwhile stay). A writer that
replaced the partition meanwhile took some of those files out: that partition's compaction is
dropped and its file removed, nothing committed for it.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import duckdb
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.io.pyarrow import parquet_file_to_data_file
from pyiceberg.table import FileScanTask, Table

from ml_platform.lakehouse.catalog import catalog, identifier
from ml_platform.lakehouse.replace import RUN_PROPERTY
from ml_platform.lakehouse.scan import tasks_sql
from ml_platform.lakehouse.tables import COMPRESSION, remove_files
from ml_platform.warehouse import sql

# Attempts at one partition's commit while writers keep committing to the table.
COMMIT_ATTEMPTS = 10


@dataclass(frozen=True)
class Compacted:
    """What compaction did to one table: partitions rewritten, their files before (now one each)."""

    table: str
    partitions: int
    files_replaced: int
    partitions_dropped: int  # replaced by a writer while being compacted: left as that writer left them


def compact(con: duckdb.DuckDBPyConnection, name: str, min_files: int, run_id: str) -> Compacted:
    """Rewrite each partition of lake table `name` holding at least `min_files` (at least 2) data
    files as one file, one commit per partition; `con` writes the files (S3 access configured)."""
    table = catalog().load_table(identifier(name))
    partitions = replaced = dropped = 0
    for tasks in _crowded_partitions(table, max(min_files, 2)):
        relation = tasks_sql(table, tasks)
        if relation is None:
            continue  # files DuckDB's reader cannot read as the table (delete files): left as they are
        folder = os.path.dirname(tasks[0].file.file_path)
        if not folder.startswith("s3://"):
            os.makedirs(folder.removeprefix("file://"), exist_ok=True)
        new_file = f"{folder}/{run_id}-compacted-{uuid.uuid4().hex[:8]}.parquet"
        con.execute(
            f"COPY (SELECT * FROM {relation}) TO {sql.literal(new_file)} (FORMAT parquet, COMPRESSION {COMPRESSION})"
        )
        if _commit(name, [task.file.file_path for task in tasks], new_file, run_id):
            partitions, replaced = partitions + 1, replaced + len(tasks)
        else:
            remove_files(name, [new_file])
            dropped += 1
        table = catalog().load_table(identifier(name))
    return Compacted(name, partitions, replaced, dropped)


def _crowded_partitions(table: Table, min_files: int) -> list[list[FileScanTask]]:
    if table.current_snapshot() is None:
        return []
    by_partition: dict[tuple, list[FileScanTask]] = {}
    for task in table.scan().plan_files():
        by_partition.setdefault((task.file.spec_id, repr(task.file.partition)), []).append(task)
    return [tasks for _, tasks in sorted(by_partition.items()) if len(tasks) >= min_files]


def _commit(name: str, old_files: list[str], new_file: str, run_id: str) -> bool:
    """Replace `old_files` by `new_file` in the table's current snapshot; False (nothing committed)
    when the current snapshot no longer holds all of `old_files`."""
    for _ in range(COMMIT_ATTEMPTS):
        table = catalog().load_table(identifier(name))
        current = {task.file.file_path: task.file for task in table.scan().plan_files()}
        if not all(path in current for path in old_files):
            return False
        added = parquet_file_to_data_file(table.io, table.metadata, new_file)
        try:
            with (
                table.transaction() as tx,
                tx.update_snapshot(snapshot_properties={RUN_PROPERTY: run_id}).overwrite() as change,
            ):
                for path in old_files:
                    change.delete_data_file(current[path])
                change.append_data_file(added)
            return True
        except CommitFailedException:
            continue  # a writer committed meanwhile: look at the new head
    return False
