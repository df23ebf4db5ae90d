"""The demo generator is deterministic and its manifest matches what is really in the files."""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest

from ml_platform.demo import generate, write_drip_file

END = date(2026, 1, 10)
ARGS = dict(days=7, events_per_day=1000, seed=42, end_date=END)
ALLOWED_TYPES = ("page_view", "product_view", "search", "add_to_cart", "remove_from_cart", "purchase")


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _relation(con: duckdb.DuckDBPyConnection, path: Path, fmt: str) -> str:
    if fmt == "csv":
        return f"read_csv('{path}', all_varchar=true)"
    if fmt == "jsonl":
        return f"read_json('{path}', format='newline_delimited')"
    return f"read_parquet('{path}')"


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("demo")
    started = time.perf_counter()
    manifest = generate(root, **ARGS)
    assert time.perf_counter() - started < 5
    return root, manifest


@pytest.fixture(scope="module")
def events(generated) -> duckdb.DuckDBPyConnection:
    """All event files in one table: landing_date plus the columns common to every version, as text."""
    root, manifest = generated
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.execute(
        "CREATE TABLE events (landing_date DATE, event_id VARCHAR, user_id VARCHAR, event_type VARCHAR,"
        " event_time VARCHAR, amount VARCHAR)"
    )
    for f in manifest["files"]:
        rel = _relation(con, root / f["path"], f["format"])
        con.execute(
            f"INSERT INTO events SELECT DATE '{f['landing_date']}', event_id::VARCHAR, user_id::VARCHAR,"
            f" event_type::VARCHAR, event_time::VARCHAR, amount::VARCHAR FROM {rel}"
        )
    return con


def test_same_args_are_byte_identical_and_seed_matters(tmp_path, generated):
    root, _ = generated
    again = tmp_path / "again"
    generate(again, **ARGS)
    assert _tree(again) == _tree(root)

    other = tmp_path / "other"
    generate(other, **{**ARGS, "seed": 43})
    assert _tree(other) != _tree(root)


def test_manifest_invariant(generated):
    _, manifest = generated
    t = manifest["totals"]
    assert t["rows"] == t["unique_valid_events"] + t["duplicates"] + t["late_beyond_tolerance"] + sum(
        t["bad_rows"].values()
    )
    assert t["rows"] == sum(f["rows"] for f in manifest["files"])
    assert sum(manifest["expected_clean_by_event_date"].values()) == t["unique_valid_events"]
    assert t["late_beyond_tolerance"] >= 1
    assert all(v > 0 for v in t["bad_rows"].values())
    assert t["duplicates"] > 0 and t["non_utc_offsets"] > 0
    assert manifest["start_date"] == "2026-01-04" and manifest["end_date"] == "2026-01-10"
    assert manifest["late_tolerance_days"] == 3


def test_files_match_manifest_and_schema_versions(generated):
    root, manifest = generated
    con = duckdb.connect()
    expected_columns = {
        "v1": ["event_id", "user_id", "event_type", "event_time", "product_id", "amount"],
        "v2": ["event_id", "user_id", "event_type", "event_time", "product_id", "amount", "device_type", "session_id"],
        "v3": ["event_id", "user_id", "event_type", "event_time", "product_id", "amount", "device", "session_id"],
    }
    for f in manifest["files"]:
        path = root / f["path"]
        assert path.exists()
        assert path.parent.name == f["landing_date"]
        rel = _relation(con, path, f["format"])
        assert con.execute(f"SELECT count(*) FROM {rel}").fetchone()[0] == f["rows"]
        columns = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()]
        assert columns == expected_columns[f["schema_version"]]
        if f["format"] == "parquet":
            types = {row[1] for row in con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()}
            assert types == {"VARCHAR"}
    assert {f["format"] for f in manifest["files"]} == {"csv", "jsonl", "parquet"}
    assert {(f["format"], f["schema_version"]) for f in manifest["files"]} == {
        (fmt, v) for fmt in ("csv", "jsonl", "parquet") for v in ("v1", "v2", "v3")
    }
    assert not [p for p in root.rglob(".*")], "no temp files left behind"
    assert not (root / "landing" / "demo_manifest.json").exists()

    users = con.execute(f"SELECT * FROM read_csv('{root / 'landing/users/users.csv'}', all_varchar=true)").df()
    assert len(users) == manifest["users"]
    assert set(users.columns) == {"user_id", "signup_date", "country", "plan"}


def test_users_cover_all_events(generated, events):
    root, _ = generated
    missing = events.execute(
        f"SELECT count(*) FROM events WHERE user_id IS NOT NULL AND user_id NOT IN"
        f" (SELECT user_id FROM read_csv('{root / 'landing/users/users.csv'}', all_varchar=true))"
    ).fetchone()[0]
    assert missing == 0


def test_counts_recomputed_from_files_match_manifest(generated, events):
    _, manifest = generated
    t = manifest["totals"]
    q = lambda sql: events.execute(sql).fetchone()[0]  # noqa: E731

    assert q("SELECT count(*) FROM events") == t["rows"]
    assert q("SELECT count(*) - count(DISTINCT event_id) FROM events WHERE event_id IS NOT NULL") == t["duplicates"]
    assert q("SELECT count(*) FROM events WHERE event_id IS NULL") == t["bad_rows"]["event_id_null"]
    assert q("SELECT count(*) FROM events WHERE user_id IS NULL") == t["bad_rows"]["user_id_null"]
    assert (
        q("SELECT count(*) FROM events WHERE event_time IS NOT NULL AND TRY_CAST(event_time AS TIMESTAMPTZ) IS NULL")
        == t["bad_rows"]["event_time_unparsable"]
    )
    assert q("SELECT count(*) FROM events WHERE TRY_CAST(amount AS DECIMAL(18, 2)) < 0") == t["bad_rows"]["amount_negative"]
    assert q("SELECT count(*) FROM events WHERE TRY_CAST(amount AS DECIMAL(18, 2)) > 10000") == t["bad_rows"]["amount_absurd"]
    assert (
        q(f"SELECT count(*) FROM events WHERE event_type NOT IN {ALLOWED_TYPES}") == t["bad_rows"]["event_type_unknown"]
    )
    assert (
        q("SELECT count(*) FROM events WHERE NOT (event_time LIKE '%Z' OR event_time LIKE '%+00:00')"
          " AND TRY_CAST(event_time AS TIMESTAMPTZ) IS NOT NULL")
        == t["non_utc_offsets"]
    )

    lag = "landing_date - TRY_CAST(event_time AS TIMESTAMPTZ)::DATE"
    late = events.execute(
        f"SELECT count(*) FILTER ({lag} BETWEEN 1 AND 3), count(*) FILTER ({lag} > 3),"
        f" count(*) FILTER ({lag} < 0) FROM (SELECT DISTINCT * FROM events)"
    ).fetchone()
    assert late == (t["late_within_tolerance"], t["late_beyond_tolerance"], 0)

    # Clean = distinct, fully valid, within tolerance; grouped by UTC event date.
    clean = events.execute(
        f"""
        SELECT strftime(TRY_CAST(event_time AS TIMESTAMPTZ)::DATE, '%Y-%m-%d') AS d, count(DISTINCT event_id)
        FROM events
        WHERE event_id IS NOT NULL AND user_id IS NOT NULL
          AND event_type IN {ALLOWED_TYPES}
          AND (amount IS NULL OR TRY_CAST(amount AS DECIMAL(18, 2)) BETWEEN 0 AND 10000)
          AND {lag} BETWEEN 0 AND 3
        GROUP BY d
        """
    ).fetchall()
    assert dict(clean) == manifest["expected_clean_by_event_date"]


def test_write_drip_file(tmp_path):
    con = duckdb.connect()
    paths = [write_drip_file(tmp_path, END, seq, seed=1, events=5) for seq in (4, 5, 6)]
    for path in paths:
        assert path.exists()
        assert path.parent == tmp_path / "landing" / "events" / END.isoformat()
        fmt = path.suffix.lstrip(".")
        assert con.execute(f"SELECT count(*) FROM {_relation(con, path, fmt)}").fetchone()[0] == 5
    assert {p.suffix for p in paths} == {".csv", ".jsonl", ".parquet"}
    assert not [p for p in tmp_path.rglob(".*")]
    # Deterministic for the same arguments.
    again = write_drip_file(tmp_path / "again", END, 4, seed=1, events=5)
    assert again.read_bytes() == paths[0].read_bytes()
