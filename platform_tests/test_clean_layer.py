"""Raw -> clean on small hand-written files: exact rows, quarantine rules and accounting."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

from conftest import write_landing
from helpers import contract_evaluations, edit_lake_table, run_check, run_metadata
from ml_platform.warehouse.resource import connect

CSV_NOV_2 = """event_id,user_id,event_type,event_time,product_id,amount
e1,u1,page_view,2026-11-02T10:00:00Z,,
e2,u1,purchase,2026-11-02T11:00:00+05:30,P1,12.50
e2,u1,purchase,2026-11-02T11:00:00+05:30,P1,12.50
e3,u2,clck,2026-11-02T11:00:00Z,,
e4,u2,purchase,2026-11-02T12:00:00Z,P2,-3
e5,u2,page_view,yesterday,,
e6,u2,purchase,2026-11-02T13:00:00Z,P2,abc
"""
# v3 file (device, session_id) landing a day later: one row of Nov 2 in UTC written at -02:00,
# one row 8 days late (beyond the 3-day tolerance), one with an extra column.
JSONL_NOV_3 = (
    "\n".join(
        json.dumps(r)
        for r in [
            {
                "event_id": "e7",
                "user_id": "u2",
                "event_type": "add_to_cart",
                "event_time": "2026-11-02T20:00:00-02:00",
                "product_id": "P3",
                "amount": None,
                "device": "mobile",
                "session_id": "s1",
            },
            {
                "event_id": "e8",
                "user_id": "u1",
                "event_type": "page_view",
                "event_time": "2026-10-26T10:00:00Z",
                "device": "desktop",
                "session_id": "s2",
            },
            {
                "event_id": "e9",
                "user_id": "u1",
                "event_type": "search",
                "event_time": "2026-11-03T01:00:00Z",
                "device": "tablet",
                "session_id": "s3",
                "referrer": "ad",
            },
        ]
    )
    + "\n"
)


def _land_fixture(data_dir):
    write_landing(data_dir, "events", "2026-11-02", "a.csv", CSV_NOV_2)
    write_landing(data_dir, "events", "2026-11-03", "b.jsonl", JSONL_NOV_3)


def _materialize(runner):
    runner.run("raw_events", range_=("2026-11-02", "2026-11-03"))
    return runner.run("clean_events", range_=("2026-11-01", "2026-11-03"), expect_success=False)


def test_raw_keeps_every_row_as_text_with_lineage(runner, data_dir):
    _land_fixture(data_dir)
    runner.run("raw_events", range_=("2026-11-02", "2026-11-03"))
    rows = runner.query(
        "SELECT landing_date, source_file, source_row, schema_version, record->>'amount' FROM raw_events ORDER BY 2, 3"
    )
    # The schema version is the file's: b.jsonl carries v3's columns plus `referrer`.
    assert [r[:4] for r in rows] == [
        *[(dt.date(2026, 11, 2), "events/2026-11-02/a.csv", i, "v1") for i in range(1, 8)],
        *[(dt.date(2026, 11, 3), "events/2026-11-03/b.jsonl", i, "unknown") for i in range(1, 4)],
    ]
    assert [r[4] for r in rows[:7]] == [None, "12.50", "12.50", None, "-3", None, "abc"]
    ledger = runner.query("SELECT source_file, row_count, schema_version FROM ingest_ledger ORDER BY 1")
    assert ledger == [("events/2026-11-02/a.csv", 7, "v1"), ("events/2026-11-03/b.jsonl", 3, "unknown")]


def test_clean_rows_are_typed_utc_deduplicated(runner, data_dir):
    _land_fixture(data_dir)
    _materialize(runner)
    rows = runner.query(
        "SELECT event_id, user_id, event_type, event_time, event_date, product_id, amount, device_type, session_id,"
        " source_file, source_row FROM clean_events ORDER BY event_id"
    )
    assert rows == [
        (
            "e1",
            "u1",
            "page_view",
            dt.datetime(2026, 11, 2, 10),
            dt.date(2026, 11, 2),
            None,
            None,
            None,
            None,
            "events/2026-11-02/a.csv",
            1,
        ),
        # +05:30 normalized to UTC; the later copy (row 3) wins the dedup.
        (
            "e2",
            "u1",
            "purchase",
            dt.datetime(2026, 11, 2, 5, 30),
            dt.date(2026, 11, 2),
            "P1",
            12.5,
            None,
            None,
            "events/2026-11-02/a.csv",
            3,
        ),
        # -02:00 on Nov 2 is Nov 2 22:00 UTC; v3's `device` lands in device_type.
        (
            "e7",
            "u2",
            "add_to_cart",
            dt.datetime(2026, 11, 2, 22),
            dt.date(2026, 11, 2),
            "P3",
            None,
            "mobile",
            "s1",
            "events/2026-11-03/b.jsonl",
            1,
        ),
        (
            "e9",
            "u1",
            "search",
            dt.datetime(2026, 11, 3, 1),
            dt.date(2026, 11, 3),
            None,
            None,
            "tablet",
            "s3",
            "events/2026-11-03/b.jsonl",
            3,
        ),
    ]


def test_every_broken_row_is_quarantined_with_its_rule(runner, data_dir):
    _land_fixture(data_dir)
    _materialize(runner)
    rows = runner.query(
        "SELECT partition_date, rule, column_name, source_file, source_row, record->>'event_id'"
        " FROM quarantine_events ORDER BY source_file, source_row"
    )
    assert rows == [
        (dt.date(2026, 11, 2), "event_type:isin", "event_type", "events/2026-11-02/a.csv", 4, "e3"),
        (dt.date(2026, 11, 2), "amount:greater_than_or_equal_to(0.0)", "amount", "events/2026-11-02/a.csv", 5, "e4"),
        (dt.date(2026, 11, 2), "event_time:unparsable_timestamp", "event_time", "events/2026-11-02/a.csv", 6, "e5"),
        (dt.date(2026, 11, 2), "amount:type(DOUBLE)", "amount", "events/2026-11-02/a.csv", 7, "e6"),
        # Too late for its own day: owned (and quarantined) by its landing day.
        (
            dt.date(2026, 11, 3),
            "event_time:later_than_tolerance(3d)",
            "event_time",
            "events/2026-11-03/b.jsonl",
            2,
            "e8",
        ),
    ]


def test_accounting_balances_and_check_reports_failures(runner, data_dir):
    _land_fixture(data_dir)
    result = _materialize(runner)
    meta = run_metadata(result)
    read, clean, quarantined, dups, out = (
        meta[k]
        for k in ("raw_rows_scanned", "dagster/row_count", "quarantined", "duplicates_removed", "owned_by_other_days")
    )
    assert (read, clean, quarantined, dups, out) == (10, 4, 5, 1, 0)
    assert read == clean + quarantined + dups + out
    assert meta["extra_columns"] == "referrer"
    assert meta["late_rows"] == 1  # e7 landed Nov 3 for Nov 2
    check = run_check(result, check="contract")
    # 5 of 10 rows quarantined is above the 10% threshold: the blocking check fails.
    assert check.passed is False
    assert check.metadata["quarantined_rows"].value == 5
    assert check.metadata["failed"].value == "quarantined_fraction<=0.1"
    # The check names the rules that sent rows to quarantine, with their column, count and rows.
    by_rule = check.metadata["quarantined_by_rule"].value
    assert [(r["rule"], r["column"], r["rows"]) for r in by_rule] == [
        ("amount:greater_than_or_equal_to(0.0)", "amount", 1),
        ("amount:type(DOUBLE)", "amount", 1),
        ("event_time:later_than_tolerance(3d)", "event_time", 1),
        ("event_time:unparsable_timestamp", "event_time", 1),
        ("event_type:isin", "event_type", 1),
    ]
    assert by_rule[0]["sample"] == [
        {
            "file": "events/2026-11-02/a.csv",
            "row": 5,
            # user_id is personal: the UI's sample masks it (moved last by the JSON patch that masks it).
            "record": (
                '{"event_id":"e4","event_type":"purchase","event_time":"2026-11-02T12:00:00Z",'
                '"product_id":"P2","amount":"-3","user_id":"***"}'
            ),
        }
    ]


def test_single_partition_reads_only_the_raw_days_that_can_hold_it(runner, data_dir):
    _land_fixture(data_dir)
    runner.run("raw_events", range_=("2026-11-02", "2026-11-03"))
    result = runner.run("clean_events", partition="2026-11-03", expect_success=False)
    meta = run_metadata(result)
    # Nov 3 reads landing days Nov 2..Nov 6: all 10 rows; it owns e9 and the too-late e8.
    assert (meta["raw_rows_scanned"], meta["dagster/row_count"], meta["quarantined"], meta["owned_by_other_days"]) == (
        10,
        1,
        1,
        8,
    )
    [check] = contract_evaluations(result)
    assert check.partition == "2026-11-03"
    assert check.passed is False  # 1 of 2 owned rows quarantined


def test_rematerializing_gives_identical_tables(runner, data_dir):
    _land_fixture(data_dir)
    _materialize(runner)
    snapshot = [
        runner.query("SELECT * EXCLUDE (ingested_at) FROM clean_events ORDER BY ALL"),
        runner.query("SELECT * EXCLUDE (ingested_at, quarantined_at) FROM quarantine_events ORDER BY ALL"),
    ]
    _materialize(runner)
    again = [
        runner.query("SELECT * EXCLUDE (ingested_at) FROM clean_events ORDER BY ALL"),
        runner.query("SELECT * EXCLUDE (ingested_at, quarantined_at) FROM quarantine_events ORDER BY ALL"),
    ]
    assert again == snapshot
    assert runner.query("SELECT count(*) FROM raw_events") == [(10,)]


def test_snapshots_build_version_history(runner, data_dir):
    header = "user_id,signup_date,country,plan\n"
    write_landing(
        data_dir, "users", "2026-11-01", "users.csv", header + "u1,2026-10-01,DE,free\nu2,2026-10-15,US,pro\n"
    )
    # Nov 2: u1 upgrades, u3 appears, one broken row is quarantined.
    write_landing(
        data_dir,
        "users",
        "2026-11-02",
        "users.csv",
        header + "u1,2026-10-01,DE,plus\nu2,2026-10-15,US,pro\nu3,2026-10-20,FR,free\nu4,2026-10-21,usa,gold\n",
    )
    # Nov 3: u2 is gone from the export, the rest unchanged.
    write_landing(
        data_dir, "users", "2026-11-03", "users.csv", header + "u1,2026-10-01,DE,plus\nu3,2026-10-20,FR,free\n"
    )
    runner.run("raw_users", range_=("2026-11-01", "2026-11-03"))
    result = runner.run("clean_users", expect_success=False)
    d = dt.date
    assert runner.query(
        "SELECT user_id, plan, valid_from, valid_to, is_current, source_file FROM clean_users ORDER BY user_id, valid_from"
    ) == [
        ("u1", "free", d(2026, 11, 1), d(2026, 11, 2), False, "users/2026-11-01/users.csv"),
        ("u1", "plus", d(2026, 11, 2), None, True, "users/2026-11-02/users.csv"),
        ("u2", "pro", d(2026, 11, 1), d(2026, 11, 3), False, "users/2026-11-01/users.csv"),
        ("u3", "free", d(2026, 11, 2), None, True, "users/2026-11-02/users.csv"),
    ]
    assert runner.query("SELECT rule, partition_date, source_row FROM quarantine_users") == [
        ("country:str_matches", d(2026, 11, 2), 4)
    ]
    meta = run_metadata(result)
    assert (meta["raw_rows_scanned"], meta["accepted_rows"], meta["quarantined"], meta["dagster/row_count"]) == (
        8,
        7,
        1,
        4,
    )
    [check] = contract_evaluations(result)
    assert check.passed is False and check.partition is None  # 1 of 8 rows > 1% allowed


def test_rows_lost_on_the_way_fail_the_write_and_change_nothing(runner, data_dir):
    """Accounting counts each term where the rows ended up: a raw row whose ledger entry is gone
    (it would silently drop out of staging) breaks the balance, and the write rolls back."""
    _land_fixture(data_dir)
    runner.run("raw_events", range_=("2026-11-02", "2026-11-03"))
    edit_lake_table(
        "ingest_ledger",
        "DELETE FROM ingest_ledger WHERE source_file = 'events/2026-11-03/b.jsonl'",
        ("source", "events"),
    )
    result = runner.run("clean_events", partition="2026-11-02", expect_success=False)
    [failure] = result.get_step_failure_events()
    message = failure.step_failure_data.error.cause.message
    assert "10 raw rows read, but 7 accounted for" in message
    assert "nothing was written" in message
    tables = {r[0] for r in runner.query("SELECT table_name FROM information_schema.tables")}
    assert "clean_events" not in tables  # the whole transaction rolled back, table creation included


def test_a_row_the_clean_insert_loses_fails_the_write(runner, data_dir, monkeypatch):
    """The winners are counted apart from the insert that writes them (distinct keys among the
    valid rows): a kept row the insert loses cannot pass for a duplicate, and the write rolls back."""
    from ml_platform.contracts.writer import ContractTable

    replace = ContractTable.replace

    def losing_e1(self, con, window, select_sql):
        if self.name == "clean_events":
            select_sql = f"SELECT * FROM ({select_sql}) WHERE event_id <> 'e1'"
        return replace(self, con, window, select_sql)

    _land_fixture(data_dir)
    runner.run("raw_events", range_=("2026-11-02", "2026-11-03"))
    monkeypatch.setattr(ContractTable, "replace", losing_e1)
    result = runner.run("clean_events", partition="2026-11-02", expect_success=False)
    [failure] = result.get_step_failure_events()
    message = failure.step_failure_data.error.cause.message
    assert "10 raw rows read, but 9 accounted for" in message
    tables = {r[0] for r in runner.query("SELECT table_name FROM information_schema.tables")}
    assert "clean_events" not in tables


def test_a_window_larger_than_the_memory_limit_spills_to_disk_and_gives_the_same_tables(runner, data_dir, monkeypatch):
    """Every warehouse connection runs under ML_PLATFORM_DUCKDB_MEMORY_LIMIT: a clean write whose
    staging does not fit spills it to `<warehouse>.tmp/` (removed afterwards) instead of growing
    the process, and writes exactly what it writes without the limit."""
    from ml_platform.demo.generator import generate

    generate(data_dir, days=2, events_per_day=100_000, seed=3, end_date=dt.date(2026, 11, 3))
    runner.run("raw_events", range_=("2026-11-02", "2026-11-03"))
    event_days = ("2026-10-30", "2026-11-04")
    tables = [
        "SELECT count(*), sum(hash(COLUMNS(* EXCLUDE (ingested_at)))) FROM clean_events",
        "SELECT count(*), sum(hash(COLUMNS(* EXCLUDE (ingested_at, quarantined_at)))) FROM quarantine_events",
    ]
    runner.run("clean_events", range_=event_days)
    unlimited = [runner.query(q) for q in tables]
    assert unlimited[0][0][0] > 150_000

    monkeypatch.setenv("ML_PLATFORM_DUCKDB_MEMORY_LIMIT", "128MB")
    spill = data_dir / "warehouse.duckdb.tmp"
    spilled = threading.Event()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if spill.is_dir() and any(spill.iterdir()):
                spilled.set()
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        runner.run("clean_events", range_=event_days)
    finally:
        done.set()
        watcher.join()
    assert spilled.is_set()
    assert not spill.exists()
    assert [runner.query(q) for q in tables] == unlimited
    limited = connect(data_dir / "warehouse.duckdb", read_only=True)
    try:
        assert limited.execute("SELECT current_setting('memory_limit')").fetchone()[0] == "122.0 MiB"
    finally:
        limited.close()
