"""Personal data: curated tables hold pseudonyms (keyed HMAC) or masks, never the raw values.

Real runs of the real assets on a real warehouse: the pseudonyms are cross-checked against
Python's hmac (helpers.pseudonym), every curated table is scanned for raw ids, the `privacy`
check passes on the platform's tables and fails on a test-only table that copies a raw id, and
the UI's samples and previews show no personal value.
"""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import duckdb
import ibis.expr.datatypes as ibis_dt
import pandas as pd
import pytest
from pandera.ibis import DataFrameModel, Field

from conftest import USERS_CSV, Runner, source_runner, write_landing
from helpers import TEST_PSEUDONYM_KEY, pseudonym, run_check, run_metadata
from ml_platform import privacy
from ml_platform.checks.privacy import raw_personal_columns
from ml_platform.contracts import personal
from ml_platform.contracts import table_contract as tc
from ml_platform.curated import CuratedTable
from ml_platform.curated.table import curated_asset
from ml_platform.declarations.sources.events import SPEC as EVENTS
from ml_platform.declarations.sources.events import CleanEvents
from ml_platform.training import get_online_features
from ml_platform.warehouse import sql

EVENTS_CSV = """event_id,user_id,event_type,event_time,product_id,amount,device_type,session_id
a1,u1,page_view,2026-11-02T08:00:00Z,,,mobile,s1
a2,u1,purchase,2026-11-02T08:03:00Z,P1,20.00,mobile,s1
b1,u2,page_view,2026-11-02T09:00:00Z,,,tablet,s2
c1,u3,page_view,2026-11-03T10:00:00Z,,,,
"""
RAW_IDS = {"u1", "u2", "u3"}
OTHER_KEY = "another-pseudonym-key-abcdefghijklmnopqrstuvwxyz"


def _land_and_clean(runner: Runner, data_dir) -> None:
    write_landing(data_dir, "users", "2026-11-01", "users.csv", USERS_CSV)
    write_landing(data_dir, "events", "2026-11-02", "e.csv", EVENTS_CSV)
    runner.run("raw_users", partition="2026-11-01")
    runner.run("clean_users")
    runner.run("raw_events", partition="2026-11-02")
    runner.run("clean_events", partition="2026-11-02")
    runner.run("clean_events", partition="2026-11-03")


def test_the_sql_pseudonym_is_hmac_sha256_of_the_key():
    con = duckdb.connect()
    long_key = "k" * 100  # longer than SHA-256's block: HMAC hashes it first
    for key in (TEST_PSEUDONYM_KEY, long_key):
        inner, outer = privacy.key_pads(key)
        con.execute(sql.bind_variable(sql.PSEUDONYM_INNER_PAD), [inner])
        con.execute(sql.bind_variable(sql.PSEUDONYM_OUTER_PAD), [outer])
        values = ["u1", "ü-ñ 42", "", None]
        got = con.execute(f"SELECT {sql.pseudonym('v')} FROM unnest(?) t(v)", [values]).fetchall()
        assert [g for (g,) in got] == [pseudonym(v, key) if v is not None else None for v in values]


def test_a_connection_without_a_bound_key_refuses_to_pseudonymize():
    con = duckdb.connect()
    with pytest.raises(duckdb.InvalidInputException, match="no pseudonym key is bound to this connection"):
        con.execute(f"SELECT {sql.pseudonym(sql.literal('u1'))}").fetchall()


def test_curated_tables_hold_exact_pseudonyms_and_the_check_passes(runner, data_dir):
    _land_and_clean(runner, data_dir)
    result = runner.run("user_daily_features", range_=("2026-11-02", "2026-11-03"))
    assert runner.query(
        "SELECT user_id, feature_date FROM user_daily_features ORDER BY feature_date, event_count DESC"
    ) == [
        (pseudonym("u1"), dt.date(2026, 11, 2)),
        (pseudonym("u2"), dt.date(2026, 11, 2)),
        (pseudonym("u3"), dt.date(2026, 11, 3)),
    ]
    # Pseudonyms still join the clean layer through the same key: u1 signed up 2026-10-01.
    assert runner.query("SELECT days_since_signup FROM user_daily_features WHERE user_id = ?", [pseudonym("u1")]) == [
        (32,)
    ]
    check = run_check(result, "user_daily_features", "privacy")
    assert check.passed is True
    assert check.severity == dg.AssetCheckSeverity.ERROR
    assert check.description == "user_daily_features: no raw personal value"
    metadata = {k: v.value for k, v in check.metadata.items()}
    assert metadata == {
        "raw_personal_values": 0,
        "columns_checked": "user_id, primary_device",
        "compared_with": "clean_events.user_id, clean_users.user_id",
    }


def test_no_raw_user_id_in_any_curated_table(runner, data_dir):
    _land_and_clean(runner, data_dir)
    runner.run("user_daily_features", range_=("2026-11-02", "2026-11-03"))
    runner.run("user_activity", range_=("2026-11-03", "2026-11-04"))
    runner.run("latest_features")
    layers = ("raw_", "clean_", "quarantine_", "ingest_", "partition_profiles")
    text_columns = runner.query(
        "SELECT table_name, column_name FROM information_schema.columns WHERE data_type = 'VARCHAR' ORDER BY ALL"
    )
    curated = [(t, c) for t, c in text_columns if not t.startswith(layers)]
    assert {t for t, _ in curated} >= {
        "user_daily_features",
        "user_activity",
        "user_activity__frontier",
        "latest_user_activity",
    }
    found = {
        (t, c): n
        for t, c in curated
        for (n,) in runner.query(f"SELECT count(*) FROM {sql.ident(t)} WHERE {sql.ident(c)} IN ('u1', 'u2', 'u3')")
        if n
    }
    assert found == {}
    assert runner.query("SELECT DISTINCT user_id FROM user_activity ORDER BY 1") == sorted(
        [(pseudonym("u1"),), (pseudonym("u2"),), (pseudonym("u3"),)]
    )
    assert runner.query("SELECT count(*) FROM latest_user_activity") == [(3,)]


class LeakyFeatures(DataFrameModel):
    user_id: ibis_dt.String = Field(description="Entity key.", metadata=personal.pseudonymized())
    day: ibis_dt.Date = Field(nullable=False, description="UTC day.")
    referrer: ibis_dt.String = Field(nullable=True, description="Not marked: a raw id copied here leaks.")
    note: ibis_dt.String = Field(nullable=True, description="Free text.", metadata=personal.masked())

    class Config:
        strict = True


def _leaky_runner(sql_text: str, instance, data_dir) -> Runner:
    table = CuratedTable(
        name="leaky_features",
        description="A test table.",
        contract=LeakyFeatures,
        partition_column="day",
        sql=sql_text,
        reads=("clean_events",),
    )
    raw = raw_personal_columns({"clean_events": CleanEvents})
    return source_runner(EVENTS, instance, data_dir, extra_assets=[curated_asset(table, raw_personal=raw)])


def test_the_privacy_check_fails_when_a_curated_table_copies_a_raw_id(instance, data_dir):
    runner = _leaky_runner(
        "SELECT user_id, event_date AS day, user_id AS referrer, event_type AS note FROM clean_events"
        " WHERE event_date BETWEEN $start AND $end",
        instance,
        data_dir,
    )
    write_landing(data_dir, "events", "2026-11-02", "e.csv", EVENTS_CSV)
    runner.run("raw_events", partition="2026-11-02")
    runner.run("clean_events", partition="2026-11-02")
    result = runner.run("leaky_features", partition="2026-11-02", expect_success=False)

    check = run_check(result, "leaky_features", "privacy")
    assert check.passed is False
    assert check.description == "leaky_features: raw personal values in referrer (3 rows)"
    metadata = {k: v.value for k, v in check.metadata.items()}
    assert metadata == {
        "raw_personal_values": 3,
        "columns_checked": "user_id, referrer, note",
        "compared_with": "clean_events.user_id",
        "rows_per_column": {"referrer": 3},
    }
    # The marked columns were protected on the way in: pseudonyms, and masks.
    assert runner.query("SELECT user_id, referrer, note FROM leaky_features ORDER BY referrer, note") == [
        (pseudonym("u1"), "u1", "***"),
        (pseudonym("u1"), "u1", "***"),
        (pseudonym("u2"), "u2", "***"),
    ]


def test_masked_columns_keep_only_whether_a_value_was_there(instance, data_dir):
    runner = _leaky_runner(
        "SELECT user_id, event_date AS day, NULL AS referrer, session_id AS note FROM clean_events"
        " WHERE event_date BETWEEN $start AND $end",
        instance,
        data_dir,
    )
    write_landing(data_dir, "events", "2026-11-02", "e.csv", EVENTS_CSV)
    runner.run("raw_events", partition="2026-11-02")
    runner.run("clean_events", range_=("2026-11-02", "2026-11-03"))
    result = runner.run("leaky_features", range_=("2026-11-02", "2026-11-03"))
    # u3's event has no session: NULL stays NULL.
    assert runner.query("SELECT day, user_id, note FROM leaky_features ORDER BY ALL") == sorted(
        [
            (dt.date(2026, 11, 2), pseudonym("u1"), "***"),
            (dt.date(2026, 11, 2), pseudonym("u1"), "***"),
            (dt.date(2026, 11, 2), pseudonym("u2"), "***"),
            (dt.date(2026, 11, 3), pseudonym("u3"), None),
        ]
    )
    assert run_check(result, "leaky_features", "privacy").passed is True


def test_another_key_gives_other_pseudonyms(runner, data_dir, monkeypatch):
    _land_and_clean(runner, data_dir)
    runner.run("user_daily_features", partition="2026-11-03")
    assert runner.query("SELECT user_id FROM user_daily_features") == [(pseudonym("u3"),)]
    monkeypatch.setenv("ML_PLATFORM_PSEUDONYM_KEY", OTHER_KEY)
    runner.run("user_daily_features", partition="2026-11-03")
    assert runner.query("SELECT user_id FROM user_daily_features") == [(pseudonym("u3", OTHER_KEY),)]
    assert pseudonym("u3", OTHER_KEY) != pseudonym("u3")


def test_a_curated_run_without_a_key_fails_naming_the_variable(runner, data_dir, monkeypatch):
    monkeypatch.delenv("ML_PLATFORM_PSEUDONYM_KEY")
    _land_and_clean(runner, data_dir)  # the clean layer keeps raw values: it needs no key
    result = runner.run("user_daily_features", partition="2026-11-02", expect_success=False)
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.event_specific_data.error.to_string()
    assert "ML_PLATFORM_PSEUDONYM_KEY is not set: curated tables pseudonymize personal columns" in message
    # Refused before anything was written: the run's transaction rolled back.
    assert runner.query("SELECT count(*) FROM information_schema.tables WHERE table_name = 'user_daily_features'") == [
        (0,)
    ]
    assert runner.query("SELECT count(*) FROM clean_events") == [(4,)]
    monkeypatch.setenv("ML_PLATFORM_PSEUDONYM_KEY", "too-short")
    result = runner.run("user_daily_features", partition="2026-11-02", expect_success=False)
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "ML_PLATFORM_PSEUDONYM_KEY is too short: use at least 32 random characters" in (
        failure.event_specific_data.error.to_string()
    )


def test_the_ui_shows_the_mark_and_no_personal_value(runner, data_dir, defs):
    for asset in ("clean_events", "user_activity", "churn_label"):
        schema = defs.get_assets_def(asset).metadata_by_key[dg.AssetKey(asset)]["dagster/column_schema"]
        [user_id] = [c for c in schema.columns if c.name == "user_id"]
        assert user_id.constraints.other == ["personal data: pseudonymized in curated tables"], asset

    bad = "event_id,user_id,event_type,event_time,product_id,amount\n" + "".join(
        f"x{i},u{i},{'bogus' if i < 8 else 'page_view'},2026-11-04T10:00:00Z,,\n" for i in range(10)
    )
    write_landing(data_dir, "events", "2026-11-04", "bad.csv", bad)
    runner.run("raw_events", partition="2026-11-04")
    result = runner.run("clean_events", partition="2026-11-04", expect_success=False)
    check = run_check(result, "clean_events", "contract")
    [by_rule] = check.metadata["quarantined_by_rule"].value
    assert by_rule["rule"] == "event_type:isin"
    records = [json.loads(s["record"]) for s in by_rule["sample"]]
    assert [r["user_id"] for r in records] == ["***"] * 5
    assert [r["event_id"] for r in records] == ["x0", "x1", "x2", "x3", "x4"]
    preview = run_metadata(result, "clean_events")["preview"]
    assert "| *** |" in preview and "u8" not in preview and "u9" not in preview


class Visits(DataFrameModel):
    user_id: ibis_dt.String = Field(description="Who.", metadata=personal.pseudonymized())
    kind: ibis_dt.String = Field(isin=["page_view"], description="What.")


def test_rule_failure_samples_mask_personal_columns():
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM (VALUES ('u1', 'bogus'), ('u2', 'page_view')) v(user_id, kind)")
    [failure] = tc.count_rule_failures(con, Visits, "SELECT * FROM t")
    assert (failure.rule, failure.failing_rows) == ("kind:isin", 1)
    assert failure.sample == [{"user_id": "***", "kind": "bogus"}]


def test_serving_takes_raw_ids_and_gives_them_back(runner, data_dir):
    _land_and_clean(runner, data_dir)
    runner.run("user_activity", range_=("2026-11-03", "2026-11-04"))

    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        served = get_online_features(
            con,
            pd.DataFrame({"user_id": ["u2", "u1", "nobody"]}),
            ["user_activity:purchases", "user_activity:events_30d"],
            at=dt.datetime(2026, 11, 4, 12),
        )
    finally:
        con.close()
    assert served["user_id"].tolist() == ["u2", "u1", "nobody"]
    values = served[["purchases", "events_30d"]].astype(object).where(served.notna(), None)
    assert values.values.tolist() == [[0, 1], [1, 2], [None, None]]


def test_the_key_is_in_no_log_metadata_or_table(runner, data_dir):
    _land_and_clean(runner, data_dir)
    result = runner.run("user_daily_features", partition="2026-11-02")
    recorded = "\n".join(repr(entry) for entry in runner.instance.all_logs(result.run_id))
    assert "user_daily_features_privacy" in recorded  # the run's check events are in what was read
    inner, outer = privacy.key_pads(TEST_PSEUDONYM_KEY)
    for secret in (TEST_PSEUDONYM_KEY, inner.hex(), outer.hex(), repr(inner)[2:-1], repr(outer)[2:-1]):
        assert secret not in recorded
    stored = (data_dir / "warehouse.duckdb").read_bytes()
    for secret in (TEST_PSEUDONYM_KEY.encode(), inner, outer):
        assert secret not in stored
