"""The clean layer's integrity checks: keys unique across days, references known as of their day.

Hand-written landing files through the real raw and clean assets:
- an event re-sent on the next day with another event time: its key is on two days, and both
  days say so (composite keys and a bounded reach too);
- users and products snapshots in which users appear late, disappear, or never exist: the
  events' `references` check counts and samples exactly the orphans, at WARN or ERROR by their
  share, and leaves days the dimension cannot tell yet unresolved.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import dagster as dg
import duckdb
import pytest

from conftest import source_runner, write_landing
from helpers import partition_checks, run_check
from ml_platform.checks.uniqueness import judge_history_uniqueness, judge_uniqueness
from ml_platform.contracts.quality_rules import QualityRules, UniquenessRule
from ml_platform.declarations.sources.events import SPEC as EVENTS

ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN
HEADER = "event_id,user_id,event_type,event_time,product_id,amount,device_type,session_id"


def _event(event_id: str, user: str, when: str, product: str = "") -> str:
    return f"{event_id},{user},page_view,{when},{product},,mobile,s1"


def _events(*rows: str) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


def _levels(checks: dict[str, dg.AssetCheckEvaluation]) -> dict[str, str]:
    return {day: "pass" if e.passed else e.severity.value for day, e in sorted(checks.items())}


def test_a_key_resent_on_another_day_fails_uniqueness_on_both_days(runner, data_dir):
    write_landing(data_dir, "events", "2026-03-01", "a.csv", _events(_event("e1", "u1", "2026-03-01T10:00:00Z")))
    write_landing(
        data_dir,
        "events",
        "2026-03-02",
        "b.csv",
        # e1 again, with another event time: the producer re-sent it; e2 is new.
        _events(_event("e1", "u1", "2026-03-02T09:00:00Z"), _event("e2", "u1", "2026-03-02T11:00:00Z")),
    )
    write_landing(data_dir, "events", "2026-03-03", "c.csv", _events(_event("e3", "u2", "2026-03-03T10:00:00Z")))
    runner.run("raw_events", range_=("2026-03-01", "2026-03-03"))
    result = runner.run("clean_events", range_=("2026-03-01", "2026-03-03"))
    checks = partition_checks(result, "clean_events", "uniqueness")
    assert _levels(checks) == {"2026-03-01": "ERROR", "2026-03-02": "ERROR", "2026-03-03": "pass"}
    assert checks["2026-03-01"].description == "2026-03-01: 1 key(s) also on 2026-03-02 (e1)"
    assert checks["2026-03-02"].description == "2026-03-02: 1 key(s) also on 2026-03-01 (e1)"
    assert {k: v.value for k, v in checks["2026-03-02"].metadata.items()} == {
        "rows": 2,
        "duplicates_within": 0,
        "keys_on_other_days": 1,
        "sample_keys": ["e1"],
    }
    run = run_check(result, "clean_events", "uniqueness")
    assert (run.passed, run.severity, run.metadata["keys_on_other_days"].value) == (False, ERROR, 2)

    # One day run alone still sees the other day's copy: the lookup covers the whole table.
    alone = runner.run("clean_events", partition="2026-03-01")
    assert run_check(alone, "clean_events", "uniqueness").description == "2026-03-01: 1 key(s) also on 2026-03-02 (e1)"


def test_composite_keys_and_a_bounded_reach(instance, data_dir):
    # Keyed by (user_id, session_id) and looking 2 days either side only.
    spec = dataclasses.replace(
        EVENTS,
        key_columns=("user_id", "session_id"),
        quality=QualityRules(uniqueness=UniquenessRule(across_days=2)),
    )
    runner = source_runner(spec, instance, data_dir)
    for day, event_id in (("2026-03-01", "e1"), ("2026-03-02", "e2"), ("2026-03-05", "e5")):
        # The same (u1, s1) on three days; (u2, s1) once.
        rows = [_event(event_id, "u1", f"{day}T10:00:00Z")]
        if day == "2026-03-02":
            rows.append(_event("e9", "u2", f"{day}T12:00:00Z"))
        write_landing(data_dir, "events", day, f"{day}.csv", _events(*rows))
    runner.run("raw_events", range_=("2026-03-01", "2026-03-05"))
    result = runner.run("clean_events", range_=("2026-03-01", "2026-03-05"))
    checks = partition_checks(result, "clean_events", "uniqueness")
    # 03-05 is 3 days from 03-02 and 4 from 03-01: beyond the reach, so it passes.
    assert _levels(checks) == {
        "2026-03-01": "ERROR",
        "2026-03-02": "ERROR",
        "2026-03-03": "pass",
        "2026-03-04": "pass",
        "2026-03-05": "pass",
    }
    # user_id is personal data: the sample masks it.
    assert checks["2026-03-02"].description == "2026-03-02: 1 key(s) also on 2026-03-01 (***|s1)"


def test_duplicates_within_a_day_and_in_a_history_are_counted(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE TABLE t (k VARCHAR, n INT, day DATE)")
    con.execute("INSERT INTO t VALUES ('a', 1, '2026-03-01'), ('a', 1, '2026-03-01'), ('b', 2, '2026-03-01')")
    [verdict] = judge_uniqueness(con, UniquenessRule(), "t", "day", ("k", "n"), days_window("2026-03-01")).values()
    assert (verdict.passed, verdict.description) == (False, "2026-03-01: 1 duplicate key(s) within the day")
    assert verdict.metadata["duplicates_within"] == 1

    con.execute("CREATE TABLE h (k VARCHAR, valid_from DATE, valid_to DATE, is_current BOOLEAN)")
    con.execute(
        "INSERT INTO h VALUES ('a', '2026-03-01', '2026-03-02', FALSE), ('a', '2026-03-02', NULL, TRUE),"
        " ('b', '2026-03-01', NULL, TRUE), ('b', '2026-03-03', NULL, TRUE), ('c', '2026-03-01', NULL, TRUE)"
    )
    assert judge_history_uniqueness(con, "h", ("k",)).description == (
        "h: 1 key(s) with more than one current version (b)"
    )
    con.execute("INSERT INTO h VALUES ('c', '2026-03-01', '2026-03-04', FALSE)")
    verdict = judge_history_uniqueness(con, "h", ("k",))
    assert verdict.description == (
        "h: 1 key(s) with more than one current version; 1 key(s) with two versions starting the same day (b, c)"
    )
    assert verdict.metadata == {
        "current_rows": 4,
        "keys_with_current_duplicates": 1,
        "keys_with_version_duplicates": 1,
        "sample_keys": dg.MetadataValue.json(["b", "c"]),
    }


def days_window(day: str) -> tuple[dt.date, dt.date]:
    return (dt.date.fromisoformat(day), dt.date.fromisoformat(day))


USERS = "user_id,signup_date,country,plan"
PRODUCTS = "product_id,category,price,active\nP0001,books,10.0,true\nP0002,toys,5.0,true\n"


@pytest.fixture
def referenced(runner, data_dir):
    """Users snapshots of 03-01 .. 03-04: u3 first listed on 03-03, u2 gone from 03-03 on."""
    snapshots = {
        "2026-03-01": ["u1", "u2"] + [f"n{i}" for i in range(200)],
        "2026-03-02": ["u1", "u2"] + [f"n{i}" for i in range(200)],
        "2026-03-03": ["u1", "u3"] + [f"n{i}" for i in range(200)],
        "2026-03-04": ["u1", "u3"] + [f"n{i}" for i in range(200)],
    }
    for day, users in snapshots.items():
        write_landing(
            data_dir, "users", day, "users.csv", "\n".join([USERS, *(f"{u},2026-01-01,DE,free" for u in users)])
        )
        write_landing(data_dir, "products", day, "products.csv", PRODUCTS)
    events = {
        # 201 references: one to a user never known (u9): 0.5 %, a WARN.
        "2026-03-01": [_event(f"a{i}", f"n{i}", "2026-03-01T10:00:00Z", "P0001") for i in range(200)]
        + [_event("a-orphan", "u9", "2026-03-01T11:00:00Z")],
        # u3 is listed from the next day's snapshot: known within the one-day lag.
        "2026-03-02": [_event("b1", "u3", "2026-03-02T10:00:00Z", "P0002")],
        # u2 left the CRM on 03-03; P0404 never existed: both orphans, half the day each: ERROR.
        "2026-03-03": [
            _event("c1", "u2", "2026-03-03T10:00:00Z", "P0001"),
            _event("c2", "u1", "2026-03-03T11:00:00Z", "P0404"),
        ],
        # The dimension would list a user of 03-04 by the 03-05 snapshot, which has not landed:
        # an unknown user cannot be told yet.
        "2026-03-04": [_event("d1", "u7", "2026-03-04T10:00:00Z")],
    }
    for day, rows in events.items():
        write_landing(data_dir, "events", day, "events.csv", _events(*rows))
    runner.run("raw_users", "raw_products", range_=("2026-03-01", "2026-03-04"))
    runner.run("clean_users")
    runner.run("clean_products")
    runner.run("raw_events", range_=("2026-03-01", "2026-03-04"))
    return runner.run("clean_events", range_=("2026-03-01", "2026-03-04"))


def test_orphans_are_counted_sampled_and_graded_by_their_share(referenced):
    checks = partition_checks(referenced, "clean_events", "references")
    assert _levels(checks) == {"2026-03-01": "WARN", "2026-03-02": "pass", "2026-03-03": "ERROR", "2026-03-04": "pass"}
    assert checks["2026-03-01"].description == (
        "2026-03-01: 1 of 201 rows (0.5%) have a user_id unknown to clean_users on their day"
        " (limit 0%; first in events/2026-03-01/events.csv:201)"
    )
    # user_id is personal data: the sample says where the orphans are, never who; products are not.
    assert checks["2026-03-03"].description == (
        "2026-03-03: 1 of 2 rows (50.0%) have a user_id unknown to clean_users on their day"
        " (limit 1%; first in events/2026-03-03/events.csv:1);"
        " 1 of 2 rows (50.0%) have a product_id unknown to clean_products on their day (limit 1%; e.g. P0404)"
    )
    shown = repr([(e.description, {k: v.value for k, v in e.metadata.items()}) for e in checks.values()])
    assert "'u9'" not in shown and "'u2'" not in shown and " u9" not in shown and " u2" not in shown
    meta = {k: v.value for k, v in checks["2026-03-04"].metadata.items()}
    assert meta == {
        "user_id_rows": 1,
        "user_id_orphans": 0,
        "user_id_orphan_rate": 0.0,
        "user_id_unresolved": 1,
        "product_id_rows": 0,
        "product_id_orphans": 0,
        "product_id_orphan_rate": 0.0,
        "product_id_unresolved": 0,
        "references": [
            {"reference": "user_id -> clean_users.user_id", "orphans": 0, "unresolved": 1, "sample": []},
            {"reference": "product_id -> clean_products.product_id", "orphans": 0, "unresolved": 0, "sample": []},
        ],
    }
    assert checks["2026-03-01"].metadata["user_id_orphan_rate"].value == 0.004975
    run = run_check(referenced, "clean_events", "references")
    assert (run.passed, run.severity) == (False, ERROR)
    # The snapshot source's own check: one current version per user.
    assert run_check(referenced, "clean_events", "uniqueness").passed


def test_references_wait_for_their_dimension(runner, data_dir):
    write_landing(data_dir, "events", "2026-03-01", "e.csv", _events(_event("e1", "u1", "2026-03-01T10:00:00Z")))
    runner.run("raw_events", partition="2026-03-01")
    check = run_check(runner.run("clean_events", partition="2026-03-01"), "clean_events", "references")
    assert check.passed
    assert check.metadata["references"].value == [
        {"reference": "user_id -> clean_users.user_id", "judged": False, "why": "clean_users does not exist yet"},
        {
            "reference": "product_id -> clean_products.product_id",
            "judged": False,
            "why": "clean_products does not exist yet",
        },
    ]


def test_snapshot_sources_check_their_key(runner, data_dir):
    write_landing(data_dir, "users", "2026-03-01", "users.csv", f"{USERS}\nu1,2026-01-01,DE,free\n")
    runner.run("raw_users", partition="2026-03-01")
    check = run_check(runner.run("clean_users"), "clean_users", "uniqueness")
    assert (
        check.passed,
        check.metadata["current_rows"].value,
        check.metadata["keys_with_current_duplicates"].value,
    ) == (
        True,
        1,
        0,
    )
