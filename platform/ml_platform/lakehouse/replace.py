"""A partition replace on a lake table: the days' old files out and their new files in, in one
catalog commit. The files are written before (by DuckDB, under names no other run uses), so the
commit only writes metadata; a commit another writer got in before fails at the catalog's
conditional UPDATE and is redone from the new head, at most `MAX_COMMITS` times, with randomized
backoff. Two replaces of the same day: the later commit wins, whole (the day is never there twice).
"""

from __future__ import annotations

import datetime as dt
import random
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import In

from ml_platform.lakehouse.catalog import catalog, identifier
from ml_platform.lakehouse.tables import partition_column

MAX_COMMITS = 20
FIRST_WAIT_SECONDS = 0.05
LONGEST_WAIT_SECONDS = 2.0
# Snapshot summary property naming the run that committed it (Iceberg's own snapshot log keeps it).
RUN_PROPERTY = "ml_platform.run-id"


class CommitConflicts(RuntimeError):
    """Every attempt of a partition replace lost to another writer's commit."""


@dataclass(frozen=True)
class Commit:
    """What a partition replace made: the table's snapshot, and how many attempts lost a race."""

    table: str
    snapshot_id: int | None
    sequence_number: int
    metadata_location: str
    total_rows: int
    redone: int


def replace_partitions(name: str, days: Iterable[dt.date], files: Sequence[str], run_id: str) -> Commit:
    """Make `files` the whole content of `days` in table `name` (a day without a file ends up empty)."""
    days = sorted(set(days))
    if not days:
        raise ValueError(f"{name}: a partition replace needs the days it replaces")
    for attempt in range(MAX_COMMITS):
        table = catalog().load_table(identifier(name))  # the latest head: a redo starts from it
        column = partition_column(table)
        properties = {RUN_PROPERTY: run_id}
        try:
            with table.transaction() as tx, warnings.catch_warnings():
                # A day's first write deletes nothing, which pyiceberg warns about.
                warnings.filterwarnings("ignore", message="Delete operation did not match any records")
                tx.delete(In(column, [day.isoformat() for day in days]), snapshot_properties=properties)
                if files:
                    # Every file's name is new: pyiceberg's check for files already in the table is not needed.
                    tx.add_files(list(files), snapshot_properties=properties, check_duplicate_files=False)
        except CommitFailedException:
            time.sleep(min(FIRST_WAIT_SECONDS * 2**attempt, LONGEST_WAIT_SECONDS) * random.uniform(0.5, 1.5))
            continue
        # The transaction left `table` at the metadata it committed (not a later writer's).
        snapshot = table.current_snapshot()  # None: nothing was ever committed and nothing was now
        return Commit(
            table=name,
            snapshot_id=snapshot.snapshot_id if snapshot else None,
            sequence_number=snapshot.sequence_number if snapshot else 0,
            metadata_location=table.metadata_location,
            total_rows=int(snapshot.summary["total-records"]) if snapshot else 0,
            redone=attempt,
        )
    raise CommitConflicts(
        f"{name}: replacing {', '.join(d.isoformat() for d in days)} lost {MAX_COMMITS} times in a row to other"
        " writers' commits; nothing of this run was committed (run it again)"
    )
