"""Partition replaces on lake tables (`ml_platform.lakehouse`), by real processes on a real catalog:
the embedded SQLite catalog with local files, and PostgreSQL as deployed.

Exactly once: a commit that lost the race to another writer's is redone from the new head and
counted; two replaces of the same day leave one of them whole; a writer SIGKILLed at any point of
its commit leaves the table old or new, and the day run again gives the table a run that was never
killed gives. Readers: DuckDB's iceberg extension and pyiceberg's own scan agree, at the current
snapshot and at an older one.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from ml_platform.lakehouse import replace, scan, tables

TABLE = "events_lake"
OTHER = "events_lake_other"  # a second table, replaced in one commit with the first
DAY1, DAY2, DAY3 = dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3)


def rows_select(day: dt.date, version: str, count: int = 50) -> str:
    """`count` rows of `day`, marked with the writer's `version`."""
    return (
        f"SELECT DATE '{day}' AS day, 'e' || i AS event_id, '{version}' AS version,"
        f" TIMESTAMPTZ '{day} 08:00:00+00' + i * INTERVAL 1 minute AS event_time, (i / 4)::DECIMAL(10, 2) AS amount"
        f" FROM range({count}) r(i)"
    )


def write_day(day: dt.date, version: str, count: int = 50, table_name: str = TABLE) -> str:
    """The day's file, written by DuckDB under the table's location (the table is made first)."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        select = rows_select(day, version, count)
        table = tables.ensure_table(table_name, con.execute(f"{select} LIMIT 0").to_arrow_table().schema, "day")
        path = f"{table.location()}/data/day={day}/{version}-{os.urandom(4).hex()}.parquet"
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        con.execute(f"COPY ({select}) TO '{path}' (FORMAT parquet)")
        return path
    finally:
        con.close()


def replace_day(day: dt.date, version: str, count: int = 50, table_name: str = TABLE) -> replace.Commit:
    return replace.replace_partitions(table_name, [day], [write_day(day, version, count, table_name)], run_id=version)


def state(snapshot_id: int | None = None, table_name: str = TABLE) -> list[tuple]:
    """Per day: rows, distinct ids, the versions, read by DuckDB's iceberg extension."""
    table = tables.load_table(table_name)
    con = duckdb.connect()
    try:
        scan.load_iceberg(con)
        return con.execute(
            "SELECT day, count(*), count(DISTINCT event_id), string_agg(DISTINCT version, ',' ORDER BY version)"
            f" FROM {scan.iceberg_scan_sql(table.metadata_location, snapshot_id)} GROUP BY day ORDER BY day"
        ).fetchall()
    finally:
        con.close()


def pyiceberg_state() -> list[tuple]:
    """The same, from pyiceberg's own scan (no DuckDB reading the table)."""
    arrow = tables.load_table(TABLE).scan().to_arrow()
    con = duckdb.connect()
    try:
        con.register("scanned", arrow)
        return con.execute(
            "SELECT day, count(*), count(DISTINCT event_id), string_agg(DISTINCT version, ',' ORDER BY version)"
            " FROM scanned GROUP BY day ORDER BY day"
        ).fetchall()
    finally:
        con.close()


@pytest.fixture(params=["sqlite", "postgres"])
def catalog_env(request, data_dir, monkeypatch):
    """The embedded catalog (SQLite under the data folder), or a PostgreSQL server's."""
    if request.param == "sqlite":
        yield
        return
    from postgres_server import postgres_server

    with postgres_server(db="lake", user="lake") as pg:
        monkeypatch.setenv(
            "ML_PLATFORM_CATALOG_URL", f"postgresql+psycopg2://{pg.user}:{pg.password}@{pg.host}:{pg.port}/{pg.db}"
        )
        yield


def in_process(function, *args):
    """`function(*args)` in a fresh process (its own catalog connection): its result."""
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(_call, dict(os.environ), function, args).result(timeout=120)


def exit_code_in_process(function, *args) -> int | None:
    """`function(*args)` in a fresh process, which may kill itself: its exit code."""
    process = mp.get_context("spawn").Process(target=_call, args=(dict(os.environ), function, args))
    process.start()
    process.join(120)
    return process.exitcode


def _call(environment, function, args):
    os.environ.clear()
    os.environ.update(environment)
    return function(*args)


def replace_after_another_commit(day: dt.date, mine: str, other: tuple) -> tuple[replace.Commit, replace.Commit]:
    """Replace `day` with the file `mine`, while another process commits `replace_day(*other)`
    between this writer's read of the table's head and its commit: (this commit, the other's)."""
    original = tables.Table.transaction
    raced = []

    def transaction_after_another_commit(self):
        if not raced:
            raced.append(in_process(replace_day, *other))
        return original(self)

    tables.Table.transaction = transaction_after_another_commit
    try:
        return replace.replace_partitions(TABLE, [day], [mine], run_id="mine"), raced[0]
    finally:
        tables.Table.transaction = original


def test_a_replace_that_lost_the_race_is_redone_from_the_new_head_and_counted(catalog_env):
    replace_day(DAY1, "v1")
    committed, other = replace_after_another_commit(DAY2, write_day(DAY2, "mine"), (DAY3, "other"))
    assert (committed.redone, other.redone) == (1, 0)
    assert committed.total_rows == 150
    assert state() == [(DAY1, 50, 50, "v1"), (DAY2, 50, 50, "mine"), (DAY3, 50, 50, "other")]
    assert pyiceberg_state() == state()
    snapshot = tables.load_table(TABLE).snapshot_by_id(committed.snapshot_id)
    assert snapshot.summary[replace.RUN_PROPERTY] == "mine"


def test_two_replaces_of_the_same_day_leave_one_of_them_whole(catalog_env):
    replace_day(DAY1, "v1")
    committed, _ = replace_after_another_commit(DAY1, write_day(DAY1, "mine", count=30), (DAY1, "other", 40))
    assert committed.redone == 1
    # The later commit replaced the day whole: neither the first version nor the other's rows stay.
    assert state() == [(DAY1, 30, 30, "mine")] == pyiceberg_state()


def test_parallel_writers_of_different_days_leave_every_day_once(catalog_env):
    days = [DAY1 + dt.timedelta(days=i) for i in range(8)]
    with ProcessPoolExecutor(4, mp_context=mp.get_context("spawn")) as pool:
        commits = list(
            pool.map(_call, [dict(os.environ)] * 8, [replace_day] * 8, [(d, f"w{i}") for i, d in enumerate(days)])
        )
    assert state() == [(day, 50, 50, f"w{i}") for i, day in enumerate(days)]
    assert sorted(c.total_rows for c in commits)[-1] == 400
    # Every commit is in the table's history, redone or not.
    assert len({c.snapshot_id for c in commits}) == 8


KILL_POINTS = {
    # The day's file, manifests and manifest list written; the catalog not asked yet.
    "before_commit": ("ml_platform.lakehouse.iceberg_private:commit_together", "before"),
    # The new metadata file written; the catalog row not updated.
    "metadata_written": ("pyiceberg.catalog.sql:SqlCatalog._write_metadata", "after"),
    # The catalog's transaction committed (the row updated); the writer not told.
    "committed": ("sqlalchemy.orm:Session.commit", "after"),
}


def _killed_replace(point, together=False):
    import importlib

    where, when = KILL_POINTS[point]
    module_name, _, attribute = where.partition(":")
    owner = importlib.import_module(module_name)
    *path, method = attribute.split(".")
    for name in path:
        owner = getattr(owner, name)
    original = getattr(owner, method)

    def killing(*args, **kwargs):
        if when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, method, staticmethod(killing) if method == "_write_metadata" else killing)
    if together:
        # Both tables' days in one commit; killed after the first one's metadata file, say.
        replace.replace_together(
            [
                replace.Replacement(TABLE, [DAY2], [write_day(DAY2, "killed")]),
                replace.Replacement(OTHER, [DAY2], [write_day(DAY2, "killed", table_name=OTHER)]),
            ],
            run_id="killed",
        )
    else:
        replace_day(DAY2, "killed")


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_writer_killed_during_its_commit_leaves_the_table_old_or_new_and_a_rerun_gives_the_same_table(
    catalog_env, point
):
    replace_day(DAY1, "v1")
    replace_day(DAY2, "v1")
    before = state()
    assert exit_code_in_process(_killed_replace, point) == -signal.SIGKILL
    after = state()
    if point == "committed":
        assert after == [(DAY1, 50, 50, "v1"), (DAY2, 50, 50, "killed")]
    else:
        assert after == before
    replace_day(DAY2, "rerun")
    assert state() == [(DAY1, 50, 50, "v1"), (DAY2, 50, 50, "rerun")] == pyiceberg_state()


@pytest.mark.parametrize("point", KILL_POINTS)
def test_two_tables_replaced_together_are_both_old_or_both_new_whenever_the_writer_is_killed(catalog_env, point):
    """`replace_together` moves both tables' pointers in one transaction of the catalog's database:
    killed before it, after the first table's new metadata file was written, or after the catalog
    committed, the writer leaves both tables old, both old, both new; never one of each."""
    for name in (TABLE, OTHER):
        replace_day(DAY2, "v1", table_name=name)
    assert exit_code_in_process(_killed_replace, point, True) == -signal.SIGKILL
    expected = [(DAY2, 50, 50, "killed" if point == "committed" else "v1")]
    assert state() == state(table_name=OTHER) == expected


def test_a_commit_of_two_tables_that_lost_the_race_on_one_is_redone_for_both(catalog_env):
    """Another writer commits to the second table between this writer's read of the heads and its
    commit: nothing of this commit lands, both are redone from the new heads, in one commit."""
    replace_day(DAY1, "v1", table_name=OTHER)
    mine = [
        replace.Replacement(TABLE, [DAY2], [write_day(DAY2, "mine")]),
        replace.Replacement(OTHER, [DAY2], [write_day(DAY2, "mine", table_name=OTHER)]),
    ]
    original = tables.Table.transaction
    raced = []

    def transaction_after_another_commit(self):
        if not raced:
            raced.append(in_process(replace_day, DAY3, "other", 50, OTHER))
        return original(self)

    tables.Table.transaction = transaction_after_another_commit
    try:
        committed = replace.replace_together(mine, run_id="mine")
    finally:
        tables.Table.transaction = original
    assert [c.redone for c in committed] == [1, 1]
    assert state() == [(DAY2, 50, 50, "mine")]
    assert state(table_name=OTHER) == [(DAY1, 50, 50, "v1"), (DAY2, 50, 50, "mine"), (DAY3, 50, 50, "other")]
    # One commit of this writer per table, each the table's current snapshot.
    for commit in committed:
        table = tables.load_table(commit.table)
        assert table.current_snapshot().snapshot_id == commit.snapshot_id
        assert table.current_snapshot().summary[replace.RUN_PROPERTY] == "mine"


def test_a_table_reads_at_an_older_snapshot_and_widens_for_new_columns(data_dir):
    first = replace_day(DAY1, "v1")
    replace_day(DAY1, "v2")
    assert state() == [(DAY1, 50, 50, "v2")]
    assert state(first.snapshot_id) == [(DAY1, 50, 50, "v1")]

    # A day with a column the table lacks: the table gains it, older files read it as NULL.
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    select = f"SELECT *, 'web' AS channel FROM ({rows_select(DAY2, 'v1')})"
    table = tables.ensure_table(TABLE, con.execute(f"{select} LIMIT 0").to_arrow_table().schema, "day")
    path = f"{table.location()}/data/day={DAY2}/wide.parquet"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"COPY ({select}) TO '{path}' (FORMAT parquet)")
    replace.replace_partitions(TABLE, [DAY2], [path], run_id="wide")
    assert tables.load_table(TABLE).schema().column_names[-1] == "channel"
    reader = duckdb.connect()
    scan.load_iceberg(reader)
    assert reader.execute(
        f"SELECT day, channel, count(*) FROM {scan.iceberg_scan_sql(scan.load_table(TABLE).metadata_location)} GROUP BY ALL ORDER BY ALL"
    ).fetchall() == [(DAY1, None, 50), (DAY2, "web", 50)]


def test_housekeeping_expires_old_snapshots_but_tagged_ones_and_removes_files_no_snapshot_names(data_dir):
    import dagster as dg

    from ml_platform.lakehouse.housekeeping import tag_snapshot
    from ml_platform.lakehouse.housekeeping_asset import lake_housekeeping

    tagged = replace_day(DAY1, "v1")
    tag_snapshot(TABLE, tagged.snapshot_id, "training_set/demo/1")
    superseded = replace_day(DAY1, "v2")
    replace_day(DAY1, "v3")
    current = replace_day(DAY2, "v1")
    # A killed writer's file, and one a running writer has just written (not committed yet).
    killed = write_day(DAY3, "killed")
    running = write_day(DAY3, "running")
    now = dt.datetime.now(dt.UTC).timestamp()
    os.utime(running, (now + 3600, now + 3600))
    table = tables.load_table(TABLE)
    snapshots = [s.snapshot_id for s in table.snapshots()]
    parquet_before = set(Path(table.location()).rglob("*.parquet"))
    superseded_file = table_file(superseded)

    result = dg.materialize(
        [lake_housekeeping], run_config={"ops": {"lake_housekeeping": {"config": {"retention_hours": 0.0}}}}
    )
    metadata = {k: v.value for k, v in result.asset_materializations_for_node("lake_housekeeping")[0].metadata.items()}
    assert metadata["snapshots_expired"] == len(snapshots) - 2
    assert metadata["per_table"][TABLE]["snapshots_kept"] == 2
    table = tables.load_table(TABLE)
    assert {s.snapshot_id for s in table.snapshots()} == {tagged.snapshot_id, current.snapshot_id}
    # Gone: the superseded day's file (its snapshot expired) and the killed writer's; kept: the
    # tagged snapshot's file and the running writer's.
    assert parquet_before - set(Path(table.location()).rglob("*.parquet")) == {Path(superseded_file), Path(killed)}
    assert Path(running).exists()
    assert state() == [(DAY1, 50, 50, "v3"), (DAY2, 50, 50, "v1")] == pyiceberg_state()
    assert state(tagged.snapshot_id) == [(DAY1, 50, 50, "v1")]
    with pytest.raises(duckdb.Error):
        state(superseded.snapshot_id)


def table_file(commit: replace.Commit) -> str:
    """The data file `commit` added (one day, one file)."""
    table = tables.load_table(TABLE)
    snapshot = table.snapshot_by_id(commit.snapshot_id)
    (added,) = [
        entry.data_file.file_path
        for manifest in snapshot.manifests(table.io)
        for entry in manifest.fetch_manifest_entry(table.io)
        if entry.snapshot_id == commit.snapshot_id and entry.status.name == "ADDED"
    ]
    return added


def test_the_platform_reads_a_snapshot_from_its_files_as_the_iceberg_extension_does(data_dir):
    """The platform reads a lake table as its snapshot's data files (`scan.scan_sql`, DuckDB's Parquet
    reader: no extension, no metadata read per query). It gives the rows and types DuckDB's iceberg
    extension gives at the current snapshot and an older one, after the table was widened (a new
    column; a column widened from INTEGER to BIGINT; a column no file holds yet, read as NULL), and
    before any file. Files without column statistics are left to the extension."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    scan.load_iceberg(con)

    def both(snapshot_id: int | None = None) -> tuple[list, list]:
        table = tables.load_table(TABLE)
        read = [
            con.execute(f"SELECT * FROM {relation} ORDER BY ALL").fetchall()
            + con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
            for relation in (
                scan.scan_sql(table, snapshot_id),
                scan.iceberg_scan_sql(table.metadata_location, snapshot_id),
            )
        ]
        return read[0], read[1]

    def add_day(day: dt.date, select: str, name: str) -> replace.Commit:
        table = tables.ensure_table(TABLE, con.execute(f"{select} LIMIT 0").to_arrow_table().schema, "day")
        path = f"{table.location()}/data/day={day}/{name}.parquet"
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        con.execute(f"COPY ({select}) TO '{path}' (FORMAT parquet)")
        return replace.replace_partitions(TABLE, [day], [path], run_id=name)

    first = add_day(DAY1, rows_select(DAY1, "v1"), "v1")
    assert "read_parquet" in scan.scan_sql(tables.load_table(TABLE))
    mine, extension = both()
    assert mine == extension and len(mine) == 50 + 5
    add_day(DAY2, f"SELECT *, 'web' AS channel, 7::INTEGER AS n FROM ({rows_select(DAY2, 'v1')})", "narrow")
    add_day(DAY3, f"SELECT *, 1099511627776::BIGINT AS n FROM ({rows_select(DAY3, 'v1')})", "wide")
    assert str(tables.load_table(TABLE).schema().find_field("n").field_type) == "long"
    widened = tables.ensure_table(TABLE, pa.schema([("late", pa.string())]), "day")
    assert widened.schema().column_names[-1] == "late"
    mine, extension = both()
    assert mine == extension
    assert [row for row in mine if row[0] == DAY3][0][-3:] == (None, 2**40, None)
    assert ("late", "VARCHAR", "YES", None, None, None) in mine
    mine, extension = both(first.snapshot_id)
    assert mine == extension and len(mine) == 50 + 5

    # A table written by something that records no column statistics: read by the extension.
    with tables.load_table(TABLE).transaction() as tx:
        tx.set_properties(**{"write.metadata.metrics.default": "none"})
    add_day(DAY1, rows_select(DAY1, "v2"), "v2")
    assert scan.scan_sql(tables.load_table(TABLE)).startswith("iceberg_scan(")


def append_day(day: dt.date, version: str, count: int = 10) -> replace.Commit:
    """One more file for `day` (a stream's micro-batch), its ids apart from every other version's."""
    path = write_day(day, version, count)
    (commit,) = replace.replace_together([replace.Replacement(TABLE, [], [path])], run_id=version)
    return commit


def files_per_day() -> dict[dt.date, int]:
    counted: dict[dt.date, int] = {}
    for task in tables.load_table(TABLE).scan().plan_files():
        day = dt.date(1970, 1, 1) + dt.timedelta(days=task.file.partition[0])
        counted[day] = counted.get(day, 0) + 1
    return dict(sorted(counted.items()))


def test_housekeeping_compacts_a_crowded_partition_into_one_file_with_the_same_rows(data_dir):
    import dagster as dg

    from ml_platform.lakehouse.housekeeping_asset import lake_housekeeping

    for i in range(5):
        append_day(DAY1, f"a{i}")
    before = [append_day(DAY2, f"b{i}") for i in range(2)][-1]
    rows_before = state()
    assert files_per_day() == {DAY1: 5, DAY2: 2}

    config = {"retention_hours": 1000.0, "compact_min_files": 3}
    result = dg.materialize([lake_housekeeping], run_config={"ops": {"lake_housekeeping": {"config": config}}})
    metadata = {k: v.value for k, v in result.asset_materializations_for_node("lake_housekeeping")[0].metadata.items()}
    assert (metadata["partitions_compacted"], metadata["files_compacted"]) == (1, 5)
    assert metadata["per_table"][TABLE]["partitions_compacted"] == 1
    # Day 1 is one file now, day 2 (below the threshold) untouched; the rows are the same, and the
    # snapshot before compaction still reads as it did.
    assert files_per_day() == {DAY1: 1, DAY2: 2}
    assert state() == rows_before == pyiceberg_state()
    assert state(before.snapshot_id) == rows_before
    assert tables.load_table(TABLE).current_snapshot().summary[replace.RUN_PROPERTY] == result.run_id


def test_compaction_racing_a_writer_keeps_its_appends_and_leaves_a_day_it_replaced(data_dir, monkeypatch):
    from ml_platform.lakehouse import compaction
    from ml_platform.lakehouse.working_copy import run_database

    for i in range(3):
        append_day(DAY1, f"a{i}")
        append_day(DAY2, f"b{i}")
    original = compaction.parquet_file_to_data_file
    raced: list[dt.date] = []

    def after_a_writer(io, metadata, path):
        # Between compaction's file and its commit: a stream appends to day 1, a rerun replaces day 2.
        if not raced:
            raced.append(append_day(DAY1, "late"))
        elif len(raced) == 1 and "day=2026-11-02" in path:
            raced.append(replace_day(DAY2, "rerun"))
        return original(io, metadata, path)

    monkeypatch.setattr(compaction, "parquet_file_to_data_file", after_a_writer)
    with run_database("compaction") as con:
        done = compaction.compact(con, TABLE, 3, "compaction")
    # Day 1: redone on the new head, the late append kept beside the compacted file. Day 2: the
    # rerun's version, its compaction dropped and its file removed.
    assert done == compaction.Compacted(TABLE, partitions=1, files_replaced=3, partitions_dropped=1)
    assert files_per_day() == {DAY1: 2, DAY2: 1}
    assert state() == [(DAY1, 40, 10, "a0,a1,a2,late"), (DAY2, 50, 50, "rerun")] == pyiceberg_state()
    folder = Path(tables.load_table(TABLE).location()) / "data" / "day=2026-11-02"
    assert [p.name for p in folder.glob("compaction-compacted-*")] == []


def test_a_table_committed_to_often_keeps_its_newest_snapshots_and_its_tagged_ones(data_dir, monkeypatch):
    """pyiceberg copies the whole metadata several times per commit, so a commit's cost grows with
    the snapshots a table keeps: the writer that takes a table a quarter above
    `ML_PLATFORM_LAKE_MAX_SNAPSHOTS` expires its oldest (a stream commits every few seconds)."""
    from ml_platform.lakehouse.housekeeping import tag_snapshot

    monkeypatch.setenv("ML_PLATFORM_LAKE_MAX_SNAPSHOTS", "4")
    commits = [append_day(DAY1, "a0")]
    tag_snapshot(TABLE, commits[0].snapshot_id, "training_set/demo/1")
    commits += [append_day(DAY1, f"a{i}") for i in range(1, 5)]
    # Five snapshots: not above 4 + 1.
    assert len(tables.load_table(TABLE).snapshots()) == 5
    commits.append(append_day(DAY1, "a5"))
    # Six: the newest four kept, and the tagged one; the rows are all there.
    kept = {s.snapshot_id for s in tables.load_table(TABLE).snapshots()}
    assert kept == {commits[0].snapshot_id, *(c.snapshot_id for c in commits[2:])}
    assert state() == [(DAY1, 60, 10, "a0,a1,a2,a3,a4,a5")]
    assert state(commits[0].snapshot_id) == [(DAY1, 10, 10, "a0")]
