"""A partition replace on lake tables: the days' old files out and their new files in, in one
catalog commit (of one table, or of several together). The files are written before (by DuckDB, under names no other run uses), so the
commit only writes metadata; a commit another writer got in before fails at the catalog's
conditional UPDATE and is redone from the new head, at most `MAX_COMMITS` times, with randomized
backoff. Two replaces of the same day: the later commit wins, whole (the day is never there twice).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import random
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import AlwaysTrue, And, EqualTo, In
from pyiceberg.table import Table, Transaction
from pyiceberg.table.metadata import TableMetadata

from ml_platform import settings
from ml_platform.lakehouse import iceberg_private
from ml_platform.lakehouse.catalog import catalog, identifier
from ml_platform.lakehouse.housekeeping import trim_snapshots
from ml_platform.lakehouse.tables import load_table, partition_column

MAX_COMMITS = 20
FIRST_WAIT_SECONDS = 0.05
LONGEST_WAIT_SECONDS = 2.0
# Snapshot summary property naming the run that committed it (Iceberg's own snapshot log keeps it).
RUN_PROPERTY = "ml_platform.run-id"


class CommitConflicts(RuntimeError):
    """Every attempt of a partition replace lost to another writer's commit."""


class StaleRead(CommitConflicts):
    """A table a replacement's rows were computed from changed after it was read: redoing the commit
    would write rows computed from the old table over the new one. Nothing was committed."""


@dataclass(frozen=True)
class Commit:
    """What a partition replace made: the table's snapshot, and how many attempts lost a race."""

    table: str
    snapshot_id: int | None
    sequence_number: int
    metadata_location: str
    total_rows: int
    redone: int


@dataclass(frozen=True)
class Replacement:
    """`files` become the whole content of `days` in table `table` (a day without a file ends up
    empty). No days: `files` are added to the table (an append). None: they replace every row of
    `scope` (a table partitioned by its scope column alone), or without a scope every row of the
    table (a table replaced whole)."""

    table: str
    days: Sequence[dt.date] | None
    files: Sequence[str]
    # (column, value): only the days' rows with this value are replaced (a table several writers
    # share, partitioned by that column first: `tables.ensure_table`'s scope column).
    scope: tuple[str, str] | None = None
    # (table, snapshot id read, None: no snapshot) for each table the rows were computed from as a
    # whole (a table replaced whole from its own rows, a frontier from its view's): if one of them
    # has another snapshot at the commit, the commit is refused (`StaleRead`) rather than redone.
    read_from: tuple[tuple[str, int | None], ...] = ()

    def check(self) -> None:
        if self.days is not None and not self.days and not self.files:
            raise ValueError(f"{self.table}: a partition replace needs the days it replaces, or files to add")


def replace_partitions(name: str, days: Iterable[dt.date], files: Sequence[str], run_id: str) -> Commit:
    """Make `files` the whole content of `days` in table `name` (a day without a file ends up empty)."""
    (committed,) = replace_together([Replacement(name, sorted(set(days)), files)], run_id)
    return committed


def replace_together(replacements: Sequence[Replacement], run_id: str) -> list[Commit]:
    """Every replacement in one commit of the catalog (`iceberg_private.commit_together`): a process
    killed at any moment leaves every table old or every table new. Redone from the new heads, all
    of them, when another writer committed to any of the tables first."""
    for replacement in replacements:
        replacement.check()
    properties = {RUN_PROPERTY: run_id}
    # One transaction per table: several replacements of one table (of different scopes) are
    # applied one after the other in it.
    by_table: dict[str, list[Replacement]] = {}
    for replacement in replacements:
        by_table.setdefault(replacement.table, []).append(replacement)
    for attempt in range(MAX_COMMITS):
        heads = {name: catalog().load_table(identifier(name)) for name in by_table}  # a redo starts from them
        _refuse_stale_reads(replacements, heads)
        prepared = [
            iceberg_private.prepare(
                heads[name],
                functools.partial(
                    _replace, column=partition_column(heads[name]), replacements=group, properties=properties
                ),
            )
            for name, group in by_table.items()
        ]
        try:
            committed = iceberg_private.commit_together(catalog(), [change for change in prepared if change])
        except CommitFailedException:
            time.sleep(min(FIRST_WAIT_SECONDS * 2**attempt, LONGEST_WAIT_SECONDS) * random.uniform(0.5, 1.5))
            continue
        # Each table as this commit left it (not as a later writer's may have); unchanged ones as they were.
        made = {
            name: _commit(name, *committed.get(head.name(), (head.metadata_location, head.metadata)), attempt)
            for name, head in heads.items()
        }
        _trim([name for name, head in heads.items() if head.name() in committed], committed, heads)
        return [made[r.table] for r in replacements]
    names = ", ".join(r.table for r in replacements)
    raise CommitConflicts(
        f"{names}: replacing days lost {MAX_COMMITS} times in a row to other writers' commits; nothing of this run"
        " was committed (run it again)"
    )


def _trim(names: list[str], committed: dict, heads: dict[str, Table]) -> None:
    """Tables this commit took a quarter above the snapshots they keep (`settings.lake_max_snapshots`)
    have their oldest expired (a stream's tables, committed to every few seconds). The write is
    done whatever happens here: a failure is logged, and housekeeping expires them later."""
    limit = settings.lake_max_snapshots()
    for name in names:
        if len(committed[heads[name].name()][1].snapshots) > limit + limit // 4:
            try:
                trim_snapshots(name, limit)
            except Exception as exc:  # noqa: BLE001 - the commit stands; expiring can wait
                logging.getLogger(__name__).warning(f"{name}: old snapshots not expired now ({exc})")


def _refuse_stale_reads(replacements: Sequence[Replacement], heads: dict[str, Table]) -> None:
    for replacement in replacements:
        for name, read in replacement.read_from:
            head = heads.get(name) or load_table(name)
            snapshot = head.current_snapshot() if head is not None else None
            current = snapshot.snapshot_id if snapshot else None
            if current != read:
                raise StaleRead(
                    f"{replacement.table}: its rows were computed from {name} at snapshot {read}, and another"
                    f" writer committed {name} since (snapshot {current}); nothing was committed (run it again)"
                )


def _replace(
    tx: Transaction, column: str | None, replacements: Sequence[Replacement], properties: dict[str, str]
) -> None:
    for replacement in replacements:
        rows = AlwaysTrue() if replacement.days is None else In(column, [day.isoformat() for day in replacement.days])
        if replacement.scope:
            rows = EqualTo(*replacement.scope) if replacement.days is None else And(EqualTo(*replacement.scope), rows)
        if replacement.days is None or replacement.days:
            with warnings.catch_warnings():
                # A day's first write deletes nothing, which pyiceberg warns about.
                warnings.filterwarnings("ignore", message="Delete operation did not match any records")
                tx.delete(rows, snapshot_properties=properties)
        if replacement.files:
            # Every file's name is new: pyiceberg's check for files already in the table is not needed.
            tx.add_files(list(replacement.files), snapshot_properties=properties, check_duplicate_files=False)


def _commit(name: str, metadata_location: str, metadata: TableMetadata, redone: int) -> Commit:
    snapshot = metadata.current_snapshot()  # None: nothing was ever committed and nothing was now
    return Commit(
        table=name,
        snapshot_id=snapshot.snapshot_id if snapshot else None,
        sequence_number=snapshot.sequence_number if snapshot else 0,
        metadata_location=metadata_location,
        total_rows=int(snapshot.summary["total-records"]) if snapshot else 0,
        redone=redone,
    )
