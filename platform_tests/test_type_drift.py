"""Schema drift beyond column sets: a column whose values change kind fails the raw `schema` check.

Six landing days of events whose `amount` holds numbers and `session_id` holds digits; then a
day whose amounts are text ("12,50 EUR", which the contract's DOUBLE cannot read: ERROR, and the
clean layer quarantines them) and whose session ids became text (the contract reads text: a WARN).
A Parquet file whose amount column turns from a number into a string is caught the same way.
"""

from __future__ import annotations

import dagster as dg
import duckdb

from conftest import days, write_landing
from helpers import partition_checks, run_check

DAYS = days("2026-03-01", "2026-03-07")
# The current schema version (v3) calls the device column `device`.
HEADER = "event_id,user_id,event_type,event_time,product_id,amount,device,session_id"
ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN


def _events(day: str, amount: str, session: str) -> str:
    rows = [
        f"{day}-{i},u{i},purchase,{day}T10:00:00Z,P0001,{amount.format(i=i)},mobile,{session.format(i=i)}"
        for i in range(20)
    ]
    return "\n".join([HEADER, *rows]) + "\n"


def test_values_that_change_kind_are_reported_per_batch_and_column(runner, data_dir):
    for day in DAYS[:-1]:
        write_landing(data_dir, "events", day, "events.csv", _events(day, "{i}.5", "{i}"))
    # Integers one day, decimals the next: one kind (numbers), no alarm.
    write_landing(data_dir, "events", DAYS[0], "events.csv", _events(DAYS[0], "{i}", "{i}"))
    write_landing(data_dir, "events", DAYS[-1], "events.csv", _events(DAYS[-1], '"{i},50 EUR"', "s-{i}"))
    result = runner.run("raw_events", range_=(DAYS[0], DAYS[-1]))
    checks = partition_checks(result, "raw_events", "schema")
    assert {d: c.passed for d, c in checks.items()} == {d: d != DAYS[-1] for d in DAYS}
    broken = checks[DAYS[-1]]
    assert (broken.severity, broken.description) == (
        ERROR,
        f"events/{DAYS[-1]}/events.csv: amount values are number -> text, which its DOUBLE contract type cannot read;"
        f" events/{DAYS[-1]}/events.csv: session_id values are number -> text",
    )
    # Run alone, the day is compared with the same days before it.
    alone = run_check(runner.run("raw_events", partition=DAYS[-1]), "raw_events", "schema")
    assert alone.description == broken.description
    assert alone.metadata["type_changes"].value == 2
    assert alone.metadata["kind_changes"].value == [
        {
            "batch": f"events/{DAYS[-1]}/events.csv",
            "column": "amount",
            "was": "number",
            "now": "text",
            "contract_type": "DOUBLE",
            "readable": False,
        },
        {
            "batch": f"events/{DAYS[-1]}/events.csv",
            "column": "session_id",
            "was": "number",
            "now": "text",
            "contract_type": "VARCHAR",
            "readable": True,
        },
    ]
    stored = runner.query(
        "SELECT column_types FROM ingest_ledger WHERE source = 'events' AND landing_date = ?", [DAYS[0]]
    )
    assert dict(stored[0][0]) == {
        "event_id": "text",
        "user_id": "text",
        "event_type": "text",
        "event_time": "timestamp",
        "product_id": "text",
        "amount": "number",
        "device_type": "text",
        "session_id": "number",
    }


def test_a_parquet_column_turning_into_strings_is_a_type_change(runner, data_dir):
    def parquet(day: str, amount_sql: str):
        folder = data_dir / "landing" / "events" / day
        folder.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect()
        con.execute(
            f"""COPY (SELECT 'e' || i || '-{day}' AS event_id, 'u1' AS user_id, 'purchase' AS event_type,
                       TIMESTAMP '{day} 10:00:00' AS event_time, 'P0001' AS product_id, {amount_sql} AS amount,
                       'mobile' AS device, 's1' AS session_id FROM range(5) t(i))
                TO '{folder / "events.parquet"}' (FORMAT parquet)"""
        )
        con.close()

    for day in DAYS[:3]:
        parquet(day, "i * 1.5")
    runner.run("raw_events", range_=(DAYS[0], DAYS[2]))
    parquet(DAYS[3], "'n/a'")
    check = run_check(runner.run("raw_events", partition=DAYS[3]), "raw_events", "schema")
    assert (check.passed, check.severity) == (False, ERROR)
    assert check.description == (
        f"events/{DAYS[3]}/events.parquet: amount values are number -> text, which its DOUBLE contract type cannot read"
    )
