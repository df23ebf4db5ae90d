"""The one place the platform uses pyiceberg's private parts: a commit of several tables in one
transaction of the SQL catalog's database.

pyiceberg commits one table at a time (`Transaction.commit_transaction` -> `Table._do_commit` ->
`SqlCatalog.commit_table`: write the new metadata file, then one conditional UPDATE of the table's
row in `iceberg_tables`). A write that replaces days of several tables (a clean table and its
quarantine, a table and its profiles) would then be several commits, and a process killed between
them would leave some tables new and some old. The SQL catalog keeps every table's pointer in one
database, so the platform does what `commit_table` does for each table, with every table's
conditional UPDATE in one database transaction: all tables move, or none does. (Iceberg's REST
catalogs offer the same as multi-table transactions; the SQL catalog has no API for it.)

The private uses, each checked against the installed pyiceberg by `test_iceberg_private.py` (run it
first after bumping pyiceberg, pinned in pyproject.toml):
- `Table._do_commit`, replaced on one table object for one call: how a transaction's updates and
  requirements are taken instead of committed (`prepare`);
- `Catalog._update_and_stage_table`: the requirements checked against the table's current
  metadata, the updates applied, the new metadata file's name;
- `Catalog._write_metadata`: the new metadata file written;
- `pyiceberg.catalog.sql.IcebergTables` and `SqlCatalog.engine`: the catalog's table of pointers,
  also read whole in one query (`current_locations`): every table's current metadata file, where
  the public API loads one table at a time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyiceberg.catalog.sql import IcebergTables, SqlCatalog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table, Transaction
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.update import TableRequirement, TableUpdate
from sqlalchemy import select, update
from sqlalchemy.orm import Session

# The pyiceberg these uses were checked against (pyproject.toml pins it).
CHECKED_VERSION = "0.12.0"


@dataclass(frozen=True)
class PreparedCommit:
    """A transaction's changes to one table, taken instead of committed."""

    table: Table
    updates: tuple[TableUpdate, ...]
    requirements: tuple[TableRequirement, ...]


class _Taken(Exception):
    """Raised by the stand-in for `_do_commit`: the changes were taken, nothing was committed."""


def prepare(table: Table, changes: Callable[[Transaction], None]) -> PreparedCommit | None:
    """`changes` made in a transaction of `table` (its snapshots' manifest files are written), taken
    as a `PreparedCommit` for `commit_together`; None when they change nothing."""
    taken: list[PreparedCommit] = []

    def take(updates: tuple[TableUpdate, ...], requirements: tuple[TableRequirement, ...]) -> None:
        taken.append(PreparedCommit(table, updates, requirements))
        raise _Taken

    transaction = table.transaction()
    changes(transaction)
    table._do_commit = take  # this table object only; it is not used for anything else after
    with contextlib.suppress(_Taken):
        transaction.commit_transaction()
    return taken[0] if taken else None


def commit_together(
    catalog: SqlCatalog, prepared: Sequence[PreparedCommit]
) -> dict[tuple[str, ...], tuple[str, TableMetadata]]:
    """Commit every prepared change in one transaction of the catalog's database: each table's new
    metadata file is written first, then every table's pointer is moved by a conditional UPDATE,
    all in one COMMIT. Raises `CommitFailedException`, with nothing committed, when another writer
    moved any of the tables since its changes were prepared (the caller prepares again from the new
    heads). Returns {table's name: (its new metadata file, its new metadata)}."""
    staged = []
    for change in prepared:
        name = change.table.name()
        current = catalog.load_table(name)
        # Checks the requirements (the branch is still at the snapshot the changes were made on)
        # against the current metadata: CommitFailedException when another writer got in first.
        new = catalog._update_and_stage_table(current, name, change.requirements, change.updates)
        catalog._write_metadata(metadata=new.metadata, io=new.io, metadata_path=new.metadata_location)
        staged.append((name, current.metadata_location, new.metadata_location, new.metadata))
    with Session(catalog.engine) as session:
        for name, old_location, new_location, _ in staged:
            namespace, table_name = ".".join(name[:-1]), name[-1]
            moved = session.execute(
                update(IcebergTables)
                .where(
                    IcebergTables.catalog_name == catalog.name,
                    IcebergTables.table_namespace == namespace,
                    IcebergTables.table_name == table_name,
                    IcebergTables.metadata_location == old_location,
                )
                .values(metadata_location=new_location, previous_metadata_location=old_location)
            )
            if moved.rowcount < 1:
                raise CommitFailedException(f"{namespace}.{table_name} was committed by another writer meanwhile")
        session.commit()
    return {name: (location, metadata) for name, _, location, metadata in staged}


def current_locations(catalog: SqlCatalog, namespace: str) -> dict[str, str]:
    """{table name: its current metadata file} of every table of `namespace`, in one query of the
    catalog's database."""
    with Session(catalog.engine) as session:
        rows = session.execute(
            select(IcebergTables.table_name, IcebergTables.metadata_location).where(
                IcebergTables.catalog_name == catalog.name, IcebergTables.table_namespace == namespace
            )
        ).all()
    return {name: location for name, location in rows if location}
