"""A run's working copy of lake tables (`ml_platform.lakehouse.working_copy`), on the embedded
catalog: what the run changed, found three ways, goes to the lake in one commit, and nothing else
moves. Exact files, rows and refusals. And what such commits mean for the warehouse's views
(`ml_platform.lakehouse.views.refresh`): a write transaction reads the catalog as it is now.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from ml_platform.lakehouse import tables
from ml_platform.lakehouse.replace import StaleRead
from ml_platform.lakehouse.scan import scan_sql
from ml_platform.lakehouse.working_copy import WorkingCopy, run_database

LEDGER = "ledger_copy"
OFFSETS = "offsets_copy"
RAW = "raw_copy"
DAY1, DAY2, DAY3 = dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3)
LEDGER_DDL = "source VARCHAR NOT NULL, landing_date DATE NOT NULL, source_file VARCHAR NOT NULL, row_count BIGINT"
OFFSETS_DDL = "source VARCHAR NOT NULL, partition INTEGER NOT NULL, next_offset BIGINT NOT NULL"
RAW_DDL = "landing_date DATE NOT NULL, source_row BIGINT NOT NULL, record JSON NOT NULL"


def files_by_partition(name: str) -> dict[tuple, list[str]]:
    """The table's current data files by partition value (scope, day), by file name."""
    found: dict[tuple, list[str]] = {}
    for file in tables.load_table(name).inspect.files().select(["file_path", "partition"]).to_pylist():
        found.setdefault(tuple(file["partition"].values()), []).append(file["file_path"].rsplit("/", 1)[-1])
    return {key: sorted(names) for key, names in sorted(found.items())}


def lake_rows(name: str) -> list[tuple]:
    with run_database("reader") as con:
        return con.execute(f"SELECT * FROM {scan_sql(tables.load_table(name))} ORDER BY ALL").fetchall()


def run(run_id: str, work) -> dict:
    """`work(copy)` in a run database, committed; returns the commits by table."""
    with run_database(run_id) as con:
        copy = WorkingCopy(con)
        work(copy)
        return copy.commit(run_id).commits


def ledger_work(source: str, days, rows: list[tuple]):
    """A run of `source` that copies in the ledger's `days` and leaves its rows of them as `rows`."""

    def work(copy: WorkingCopy) -> None:
        copy.con.execute(f"CREATE TABLE {LEDGER} ({LEDGER_DDL})")
        copy.diff(LEDGER, "landing_date", ("source", source), days)
        copy.con.execute(f"DELETE FROM {LEDGER}")
        if rows:
            copy.con.executemany(f"INSERT INTO {LEDGER} VALUES (?, ?, ?, ?)", rows)

    return work


def test_diff_appends_what_was_added_replaces_only_the_days_that_changed_and_leaves_other_sources(data_dir):
    run("first", ledger_work("a", (DAY1, DAY2), [("a", DAY1, "a1", 1), ("a", DAY2, "a2", 2)]))
    run("other", ledger_work("b", (DAY1, DAY2), [("b", DAY1, "b1", 10)]))
    before = files_by_partition(LEDGER)
    assert sorted(before) == [("a", DAY1), ("a", DAY2), ("b", DAY1)]

    # Nothing changed: no commit at all.
    unchanged = tables.load_table(LEDGER).current_snapshot().snapshot_id
    commits = run("same", ledger_work("a", (DAY1, DAY2), [("a", DAY1, "a1", 1), ("a", DAY2, "a2", 2)]))
    assert commits == {LEDGER: None}
    assert tables.load_table(LEDGER).current_snapshot().snapshot_id == unchanged

    # Only added: appended as a new file; no file of the table is rewritten.
    run("added", ledger_work("a", (DAY1, DAY2), [("a", DAY1, "a1", 1), ("a", DAY2, "a2", 2), ("a", DAY2, "a3", 3)]))
    after = files_by_partition(LEDGER)
    assert after[("a", DAY1)] == before[("a", DAY1)] and after[("b", DAY1)] == before[("b", DAY1)]
    assert len(after[("a", DAY2)]) == 2 and set(before[("a", DAY2)]) < set(after[("a", DAY2)])
    assert tables.load_table(LEDGER).current_snapshot().summary["operation"].value == "append"

    # A row changed on day 1: day 1 of source a is replaced, and only it.
    run("changed", ledger_work("a", (DAY1, DAY2), [("a", DAY1, "a1", 7), ("a", DAY2, "a2", 2), ("a", DAY2, "a3", 3)]))
    changed = files_by_partition(LEDGER)
    assert changed[("a", DAY1)] != after[("a", DAY1)] and changed[("a", DAY1)][0].startswith("changed-")
    assert changed[("a", DAY2)] == after[("a", DAY2)] and changed[("b", DAY1)] == before[("b", DAY1)]
    assert lake_rows(LEDGER) == [
        ("a", DAY1, "a1", 7),
        ("a", DAY2, "a2", 2),
        ("a", DAY2, "a3", 3),
        ("b", DAY1, "b1", 10),
    ]


def test_diff_refuses_changes_to_days_it_did_not_copy_in_and_rows_of_another_scope(data_dir):
    run("first", ledger_work("a", (DAY1, DAY2), [("a", DAY1, "a1", 1), ("a", DAY3, "a3", 3)]))
    kept = lake_rows(LEDGER)
    files = files_by_partition(LEDGER)
    # Copies in day 1 only, then removes the day-3 row it never read.
    with pytest.raises(RuntimeError, match=r"ledger_copy: the run changed rows of days it did not copy in"):

        def outside(copy: WorkingCopy) -> None:
            ledger_work("a", (DAY1, DAY1), [("a", DAY1, "a1", 1), ("a", DAY2, "a2", 2)])(copy)
            copy.con.execute(f"UPDATE {LEDGER} SET row_count = 9 WHERE landing_date = '{DAY1}'")

        run("outside", outside)
    with pytest.raises(RuntimeError, match=r"ledger_copy: the run wrote 1 row\(s\) whose source is not 'a'"):
        run("foreign", ledger_work("a", (DAY1, DAY3), [("a", DAY1, "a1", 1), ("b", DAY1, "b1", 1)]))
    # Nothing committed, and no file of the refused runs left behind.
    assert lake_rows(LEDGER) == kept and files_by_partition(LEDGER) == files
    location = tables.load_table(LEDGER).location()
    written = sorted(p.name for p in (data_dir / location.removeprefix(str(data_dir) + "/")).rglob("*.parquet"))
    assert written == sorted(name for names in files.values() for name in names)


def test_a_table_without_days_is_replaced_whole_per_scope(data_dir):
    def offsets(source: str, values: list[tuple]):
        def work(copy: WorkingCopy) -> None:
            copy.con.execute(f"CREATE TABLE {OFFSETS} ({OFFSETS_DDL}, PRIMARY KEY (source, partition))")
            copy.diff(OFFSETS, None, ("source", source))
            copy.con.executemany(f"INSERT OR REPLACE INTO {OFFSETS} VALUES (?, ?, ?)", values)

        return work

    run("a1", offsets("a", [("a", 0, 10), ("a", 1, 20)]))
    run("b1", offsets("b", [("b", 0, 5)]))
    run("a2", offsets("a", [("a", 1, 25)]))
    assert lake_rows(OFFSETS) == [("a", 0, 10), ("a", 1, 25), ("b", 0, 5)]
    assert sorted(files_by_partition(OFFSETS)) == [("a",), ("b",)]


def test_replaces_and_appends(data_dir):
    def raw(mode: str, days, rows: list[tuple]):
        def work(copy: WorkingCopy) -> None:
            copy.con.execute(f"CREATE TABLE {RAW} ({RAW_DDL})")
            if mode == "replace":
                copy.replaces(RAW, "landing_date", days)
            else:
                copy.appends(RAW, "landing_date")
            if rows:
                copy.con.executemany(f"INSERT INTO {RAW} VALUES (?, ?, ?)", rows)

        return work

    run("r1", raw("replace", (DAY1, DAY2), [(DAY1, 1, '{"a": 1}'), (DAY2, 1, '{"a": 2}')]))
    run("r2", raw("append", None, [(DAY2, 2, '{"a": 3}')]))
    # A replace of day 2 with no rows empties it; day 1 keeps its file.
    day1 = files_by_partition(RAW)[(DAY1,)]
    run("r3", raw("replace", (DAY2, DAY2), []))
    assert lake_rows(RAW) == [(DAY1, 1, '{"a": 1}')]
    assert files_by_partition(RAW) == {(DAY1,): day1}
    with pytest.raises(RuntimeError, match=r"raw_copy: the run wrote 1 row\(s\) outside the days it replaces"):
        run("r4", raw("replace", (DAY2, DAY2), [(DAY3, 1, '{"a": 9}')]))
    assert lake_rows(RAW) == [(DAY1, 1, '{"a": 1}')]


def test_a_write_transaction_reads_every_lake_table_as_the_catalog_has_it_now(data_dir):
    """Commits made outside the warehouse (another worker, another engine) are what the next write
    transaction reads; a read-only connection keeps the views as the last writer left them; a
    warehouse file made anew gets a view of every lake table: for lake tables it is a cache."""
    from ml_platform.lakehouse.views import refresh
    from ml_platform.warehouse import Warehouse

    def ledger(con) -> list[tuple]:
        return con.execute(f"SELECT * FROM {LEDGER} ORDER BY ALL").fetchall()

    run("first", ledger_work("a", (DAY1, DAY2), [("a", DAY1, "a1", 1)]))
    path = data_dir / "warehouse.duckdb"
    warehouse = Warehouse(database=str(path))
    with warehouse.transaction() as con:
        assert ledger(con) == [("a", DAY1, "a1", 1)]
    run("second", ledger_work("a", (DAY1, DAY2), [("a", DAY1, "a1", 2), ("a", DAY2, "a2", 3)]))
    with warehouse.read() as con:
        assert ledger(con) == [("a", DAY1, "a1", 1)]
    with warehouse.transaction() as con:
        assert ledger(con) == [("a", DAY1, "a1", 2), ("a", DAY2, "a2", 3)]
        assert refresh(con) == []  # nothing moved since the transaction began: nothing planned again
    path.unlink()
    with warehouse.transaction() as con:
        assert ledger(con) == [("a", DAY1, "a1", 2), ("a", DAY2, "a2", 3)]


STATE = "state_copy"


def _state_files() -> list[str]:
    """Every file under the state table's data folder (committed or not)."""
    folder = tables.load_table(STATE).location() + "/data"
    return sorted(path.name for path in Path(folder).iterdir())


def _set_state(run_id: str, value: int) -> None:
    """A run that copies the state table in whole and leaves it as one row of `value`."""

    def work(copy: WorkingCopy) -> None:
        copy.con.execute(f"CREATE TABLE {STATE} (value BIGINT)")
        copy.diff(STATE, None)
        copy.con.execute(f"DELETE FROM {STATE}")
        copy.con.execute(f"INSERT INTO {STATE} VALUES ({value})")

    run(run_id, work)


def test_a_table_copied_whole_is_not_committed_over_another_writers_commit_made_after_the_copy(data_dir):
    """A table without days or scope, copied in whole (a stream view's state) and changed: when
    another writer committed it after the copy, the commit is refused (its rows were computed from
    the old table), nothing is committed and no file is left; it is not redone over theirs."""
    _set_state("first", 1)
    with run_database("late") as con:
        copy = WorkingCopy(con)
        con.execute(f"CREATE TABLE {STATE} (value BIGINT)")
        copy.diff(STATE, None)
        con.execute(f"UPDATE {STATE} SET value = value + 10")
        _set_state("meanwhile", 2)
        committed = _state_files()
        with pytest.raises(StaleRead, match=f"{STATE}: its rows were computed from {STATE} at snapshot"):
            copy.commit("late")
    assert lake_rows(STATE) == [(2,)]
    assert _state_files() == committed


def test_a_whole_table_written_in_a_transaction_is_not_committed_over_a_commit_made_after_it_read_it(data_dir):
    """`write_whole` (a frontier, a snapshot history) in a warehouse transaction: rows computed
    from the table as the transaction read it are refused, with their file removed, when another
    writer committed the table since; without one they commit."""
    from ml_platform.contracts.writer import write_whole
    from ml_platform.warehouse import Warehouse

    _set_state("first", 1)
    warehouse = Warehouse(database=str(data_dir / "warehouse.duckdb"))
    with warehouse.transaction() as con:
        assert write_whole(con, STATE, f"SELECT value + 1 AS value FROM {STATE}") == 1
    assert lake_rows(STATE) == [(2,)]
    before = _state_files()
    stale = pytest.raises(StaleRead, match=f"{STATE}: its rows were computed from {STATE} at snapshot")
    with stale, warehouse.transaction() as con:
        write_whole(con, STATE, f"SELECT value + 1 AS value FROM {STATE}")
        _set_state("meanwhile", 5)
    assert lake_rows(STATE) == [(5,)]
    # The other writer's file is new; the refused write's file (written at once) is gone.
    assert [name.split("-")[0] for name in sorted(set(_state_files()) - set(before))] == ["meanwhile"]
    with warehouse.read() as con:  # the warehouse's view was never pointed at the refused rows
        assert con.execute(f"SELECT * FROM {STATE}").fetchall() == [(2,)]


def test_a_replaced_table_is_flushed_as_files_while_the_run_writes_and_read_whole_once_settled(data_dir):
    """A run that writes more rows than it should hold writes them out as it goes (`flush`): what it
    holds is written once it is at least the threshold; `settle` writes the rest and the run then reads
    every row it wrote, in its table's types; the commit replaces the days with all those files."""
    rows = [(DAY1, 1, '{"a": 1}'), (DAY1, 2, '{"a": 2}'), (DAY2, 1, '{"b": 1}')]

    def work(copy: WorkingCopy) -> None:
        con = copy.con
        con.execute(f"CREATE TABLE {RAW} ({RAW_DDL})")
        copy.replaces(RAW, "landing_date", (DAY1, DAY2))
        con.executemany(f"INSERT INTO {RAW} VALUES (?, ?, ?)", rows[:1])
        copy.flush(RAW, "r1", at_least=2)  # one row: kept
        assert con.execute(f"SELECT count(*) FROM {RAW}").fetchone() == (1,)
        con.executemany(f"INSERT INTO {RAW} VALUES (?, ?, ?)", rows[1:2])
        copy.flush(RAW, "r1", at_least=2)  # two rows: written, the table emptied
        assert con.execute(f"SELECT count(*) FROM {RAW}").fetchone() == (0,)
        con.executemany(f"INSERT INTO {RAW} VALUES (?, ?, ?)", rows[2:])
        copy.settle(RAW, "r1")
        assert con.execute(f"SELECT *, typeof(record) FROM {RAW} ORDER BY ALL").fetchall() == [
            (*row, "JSON") for row in rows
        ]
        with pytest.raises(duckdb.CatalogException, match="raw_copy is not an table"):
            con.execute(f"INSERT INTO {RAW} VALUES (?, ?, ?)", (DAY2, 2, "{}"))

    run("r1", work)
    assert lake_rows(RAW) == rows
    # Day 1: the flushed file; day 2: the one written when settled.
    files = files_by_partition(RAW)
    assert [len(names) for names in files.values()] == [1, 1] and list(files) == [(DAY1,), (DAY2,)]
    assert files[(DAY1,)] != files[(DAY2,)]


def test_files_flushed_by_a_run_that_fails_are_removed_and_rows_outside_its_days_refused_at_once(data_dir):
    folder = None

    def failing(copy: WorkingCopy) -> None:
        nonlocal folder
        copy.con.execute(f"CREATE TABLE {RAW} ({RAW_DDL})")
        copy.replaces(RAW, "landing_date", (DAY1, DAY1))
        copy.con.execute(f"INSERT INTO {RAW} VALUES (?, ?, ?)", (DAY1, 1, "{}"))
        copy.flush(RAW, "r1", at_least=1)
        folder = Path(tables.load_table(RAW).location().removeprefix("file://")) / "data"
        assert len(list(folder.rglob("*.parquet"))) == 1
        copy.con.execute(f"INSERT INTO {RAW} VALUES (?, ?, ?)", (DAY2, 1, "{}"))
        copy.flush(RAW, "r1", at_least=1)

    with run_database("r1") as con:
        copy = WorkingCopy(con)
        with pytest.raises(RuntimeError, match=r"raw_copy: the run wrote 1 row\(s\) outside the days it replaces"):
            failing(copy)
        copy.discard()
    assert list(folder.rglob("*.parquet")) == []
    assert tables.load_table(RAW).current_snapshot() is None
