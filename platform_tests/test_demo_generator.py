"""The demo generator is deterministic and its manifest matches what is really in the files."""

from __future__ import annotations

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


def _load_snapshots(con: duckdb.DuckDBPyConnection, root: Path, source: str) -> None:
    """Every daily snapshot of `source` in one table, with the snapshot day from the folder name."""
    con.execute(
        f"""
        CREATE OR REPLACE TABLE {source} AS
        SELECT * EXCLUDE (filename),
               CAST(regexp_extract(replace(filename, '\\', '/'), '(\\d{{4}}-\\d{{2}}-\\d{{2}})/[^/]+$', 1) AS DATE)
                 AS snapshot_date
        FROM read_csv('{root}/landing/{source}/*/{source}.csv', all_varchar=true, filename=true)
        """
    )


def _snapshot_changes(con: duckdb.DuckDBPyConnection, source: str, key: str, attrs: list[str]) -> dict:
    """SCD2 versions, per-attribute changes and appear / disappear counts between consecutive snapshots."""
    q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    row = "concat_ws('|', " + ", ".join(attrs) + ")"
    first = q(f"SELECT min(snapshot_date) FROM {source}")
    pairs = f"{source} c JOIN {source} p ON p.{key} = c.{key} AND p.snapshot_date = c.snapshot_date - 1"
    result = {
        "versions": q(
            f"SELECT count(*) FILTER (WHERE prev IS NULL OR prev <> cur) FROM ("
            f" SELECT {row} AS cur, lag({row}) OVER (PARTITION BY {key} ORDER BY snapshot_date) AS prev FROM {source})"
        ),
        "added": q(
            f"SELECT count(*) FROM {source} c WHERE c.snapshot_date > DATE '{first}' AND NOT EXISTS"
            f" (SELECT 1 FROM {source} p WHERE p.{key} = c.{key} AND p.snapshot_date = c.snapshot_date - 1)"
        ),
        "removed": q(
            f"SELECT count(*) FROM {source} p WHERE p.snapshot_date < (SELECT max(snapshot_date) FROM {source})"
            f" AND NOT EXISTS (SELECT 1 FROM {source} c"
            f" WHERE c.{key} = p.{key} AND c.snapshot_date = p.snapshot_date + 1)"
        ),
        "gaps": q(
            f"SELECT count(*) FROM (SELECT {key} FROM {source} GROUP BY {key}"
            f" HAVING count(*) <> max(snapshot_date) - min(snapshot_date) + 1)"
        ),
    }
    for attr in attrs:
        result[attr] = q(f"SELECT count(*) FROM {pairs} WHERE c.{attr} IS DISTINCT FROM p.{attr}")
    return result


def _telemetry_counts(root: Path) -> dict:
    """Counts of the telemetry files recomputed from the lines and, via DuckDB, from the values."""
    paths = sorted((root / "landing" / "telemetry").glob("*/telemetry_*.jsonl"))
    lines = [p.read_text(encoding="utf-8").splitlines() for p in paths]
    con = duckdb.connect()
    con.execute(
        f"CREATE TABLE t AS SELECT * FROM read_json('{root}/landing/telemetry/*/*.jsonl',"
        f" format='newline_delimited', filename=true)"
    )
    q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    in_range = "temperature BETWEEN 0 AND 200 AND vibration BETWEEN 0 AND 100"
    return {
        "files": len(paths),
        "rows": q("SELECT count(*) FROM t"),
        "line_duplicates": sum(len(f) - len(set(f)) for f in lines),
        "duplicates": q("SELECT count(*) - (SELECT count(*) FROM (SELECT DISTINCT * FROM t)) FROM t"),
        "valid_unique": q(f"SELECT count(*) FROM (SELECT DISTINCT * FROM t WHERE {in_range})"),
        "temperature_out_of_range": q("SELECT count(*) FROM t WHERE NOT temperature BETWEEN 0 AND 200"),
        "vibration_out_of_range": q("SELECT count(*) FROM t WHERE NOT vibration BETWEEN 0 AND 100"),
        "devices": q("SELECT count(DISTINCT device_id) FROM t"),
        "readings_per_device_hour": q(
            "SELECT count(*) FROM (SELECT filename, device_id FROM (SELECT DISTINCT * FROM t)"
            " GROUP BY ALL HAVING count(*) <> 1)"
        ),
        "outside_hour": q(
            "SELECT count(*) FROM t WHERE strftime(timestamp::TIMESTAMP, '%Y-%m-%d/telemetry_%H.jsonl')"
            " <> regexp_extract(replace(filename, '\\', '/'), '[^/]+/[^/]+$')"
        ),
        "types": dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE t)").fetchall()),
        "con": con,
    }


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("demo")
    started = time.perf_counter()
    manifest = generate(root, **ARGS)
    assert time.perf_counter() - started < 3
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


def test_users_cover_all_events(generated, events):
    """Every event's user is in the snapshot of the event's landing date and in the first one."""
    root, manifest = generated
    _load_snapshots(events, root, "users")
    missing = events.execute(
        f"""
        SELECT count(*) FILTER (WHERE s.user_id IS NULL), count(*) FILTER (WHERE f.user_id IS NULL)
        FROM events e
        LEFT JOIN users s ON s.user_id = e.user_id AND s.snapshot_date = e.landing_date
        LEFT JOIN users f ON f.user_id = e.user_id AND f.snapshot_date = DATE '{manifest["start_date"]}'
        WHERE e.user_id IS NOT NULL
        """
    ).fetchone()
    assert missing == (0, 0)


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
    assert (
        q("SELECT count(*) FROM events WHERE TRY_CAST(amount AS DECIMAL(18, 2)) < 0")
        == t["bad_rows"]["amount_negative"]
    )
    assert (
        q("SELECT count(*) FROM events WHERE TRY_CAST(amount AS DECIMAL(18, 2)) > 10000")
        == t["bad_rows"]["amount_absurd"]
    )
    assert (
        q(f"SELECT count(*) FROM events WHERE event_type NOT IN {ALLOWED_TYPES}") == t["bad_rows"]["event_type_unknown"]
    )
    assert (
        q(
            "SELECT count(*) FROM events WHERE NOT (event_time LIKE '%Z' OR event_time LIKE '%+00:00')"
            " AND TRY_CAST(event_time AS TIMESTAMPTZ) IS NOT NULL"
        )
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


def test_user_snapshots_match_manifest(generated):
    root, manifest = generated
    users = manifest["users"]
    dates = sorted(p.name for p in (root / "landing" / "users").iterdir())
    assert len(dates) == users["snapshots"] == ARGS["days"]
    assert dates[0] == manifest["start_date"] and dates[-1] == manifest["end_date"]
    assert not (root / "landing" / "users" / "users.csv").exists()

    con = duckdb.connect()
    _load_snapshots(con, root, "users")
    q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    assert [r[0] for r in con.execute("DESCRIBE SELECT * EXCLUDE (snapshot_date) FROM users").fetchall()] == [
        "user_id",
        "signup_date",
        "country",
        "plan",
    ]
    assert q(f"SELECT count(*) FROM users WHERE snapshot_date = DATE '{dates[0]}'") == users["initial"]
    assert q(f"SELECT count(*) FROM users WHERE snapshot_date = DATE '{dates[-1]}'") == users["current"]
    assert q("SELECT count(*) FROM (SELECT user_id, snapshot_date FROM users GROUP BY ALL HAVING count(*) > 1)") == 0

    changes = _snapshot_changes(con, "users", "user_id", ["signup_date", "country", "plan"])
    assert changes["versions"] == users["expected_versions"]
    assert (changes["plan"], changes["country"], changes["added"], changes["removed"]) == (
        users["plan_changes"],
        users["country_changes"],
        users["added"],
        users["removed"],
    )
    assert changes["signup_date"] == 0 and changes["gaps"] == 0  # fixed signup; the removed never return
    assert all(users[k] > 0 for k in ("plan_changes", "country_changes", "added", "removed"))
    assert users["current"] == users["initial"] + users["added"] - users["removed"]

    # New users signed up on the day they first appear; values stay within the contract.
    assert (
        q(
            f"SELECT count(*) FROM (SELECT user_id, min(snapshot_date) AS seen, any_value(signup_date) AS signup"
            f" FROM users GROUP BY user_id) WHERE seen > DATE '{dates[0]}' AND signup::DATE <> seen"
        )
        == 0
    )
    assert (
        q(
            "SELECT count(*) FROM users WHERE plan NOT IN ('free', 'plus', 'pro')"
            " OR NOT regexp_full_match(country, '[A-Z]{2}')"
        )
        == 0
    )
    # The drip's users U00001..U00050 are in every snapshot, unchanged in signup_date.
    assert q("SELECT count(*) FROM users WHERE user_id BETWEEN 'U00001' AND 'U00050'") == 50 * len(dates)


def test_product_snapshots_match_manifest(generated, events):
    root, manifest = generated
    products = manifest["products"]
    dates = sorted(p.name for p in (root / "landing" / "products").iterdir())
    assert len(dates) == products["snapshots"] == ARGS["days"]
    assert dates[0] == manifest["start_date"] and dates[-1] == manifest["end_date"]

    con = duckdb.connect()
    _load_snapshots(con, root, "products")
    q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    assert [r[0] for r in con.execute("DESCRIBE SELECT * EXCLUDE (snapshot_date) FROM products").fetchall()] == [
        "product_id",
        "category",
        "price",
        "active",
    ]
    assert q(f"SELECT count(*) FROM products WHERE snapshot_date = DATE '{dates[0]}'") == products["initial"] == 250
    assert q(f"SELECT count(*) FROM products WHERE snapshot_date = DATE '{dates[-1]}'") == products["current"] == 250
    assert q("SELECT count(DISTINCT product_id) FROM products") == 250
    assert q("SELECT min(product_id) || max(product_id) FROM products") == "P0001P0250"
    assert (
        q(
            "SELECT count(*) FROM products"
            " WHERE category NOT IN ('electronics', 'home', 'fashion', 'sports', 'books', 'toys')"
            " OR NOT regexp_full_match(price, '\\d+\\.\\d{2}') OR price::DECIMAL(8, 2) NOT BETWEEN 1 AND 500"
            " OR active NOT IN ('true', 'false')"
        )
        == 0
    )

    changes = _snapshot_changes(con, "products", "product_id", ["category", "price", "active"])
    assert changes["versions"] == products["expected_versions"]
    assert (changes["price"], changes["active"]) == (products["price_changes"], products["active_changes"])
    assert changes["category"] == changes["added"] == changes["removed"] == changes["gaps"] == 0
    assert products["price_changes"] > 0 and products["active_changes"] > 0

    # Every product id in the events is in the catalogue.
    _load_snapshots(events, root, "products")
    for f in manifest["files"]:
        rel = _relation(events, root / f["path"], f["format"])
        assert (
            events.execute(
                f"SELECT count(*) FROM {rel} WHERE product_id IS NOT NULL"
                f" AND product_id::VARCHAR NOT IN (SELECT product_id FROM products)"
            ).fetchone()[0]
            == 0
        )


@pytest.mark.parametrize("hours", [24, 3])
def test_telemetry_matches_manifest(tmp_path, generated, hours):
    if hours == 24:
        root, manifest = generated
    else:
        root, manifest = tmp_path, generate(tmp_path, **{**ARGS, "days": 2}, telemetry_hours_per_day=hours)
    days = manifest["days"]
    tele = manifest["telemetry"]
    counts = _telemetry_counts(root)
    con = counts.pop("con")

    assert counts["files"] == tele["files"] == days * hours
    for d in sorted({p.parent.name for p in (root / "landing" / "telemetry").glob("*/*.jsonl")}):
        names = sorted(p.name for p in (root / "landing" / "telemetry" / d).iterdir())
        assert names == [f"telemetry_{h:02d}.jsonl" for h in range(hours)]
    assert counts["rows"] == tele["rows"] == tele["valid_unique"] + tele["duplicates"] + sum(tele["bad_rows"].values())
    assert counts["line_duplicates"] == counts["duplicates"] == tele["duplicates"] > 0
    assert counts["valid_unique"] == tele["valid_unique"]
    assert counts["temperature_out_of_range"] == tele["bad_rows"]["temperature_out_of_range"] > 0
    assert counts["vibration_out_of_range"] == tele["bad_rows"]["vibration_out_of_range"] > 0
    assert counts["devices"] == tele["devices"] == 20
    assert tele["valid_unique"] + sum(tele["bad_rows"].values()) == days * hours * 20
    assert counts["readings_per_device_hour"] == 0 and counts["outside_hour"] == 0
    assert {k: v for k, v in counts["types"].items() if k != "filename"} == {
        "device_id": "VARCHAR",
        "timestamp": "TIMESTAMP",
        "temperature": "DOUBLE",
        "vibration": "DOUBLE",
        "pressure": "DOUBLE",
        "rpm": "BIGINT",
        "power_consumption": "DOUBLE",
        "operating_hours": "DOUBLE",
        "maintenance_flag": "BOOLEAN",
        "location": "VARCHAR",
    }
    # Operating hours climb by exactly one per hour file; each device stays in one plant.
    q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    assert (
        q(
            "SELECT count(*) FROM (SELECT operating_hours - lag(operating_hours) OVER"
            " (PARTITION BY device_id ORDER BY filename) AS step FROM (SELECT DISTINCT * EXCLUDE (temperature, vibration,"
            " timestamp) FROM t)) WHERE step <> 1"
        )
        == 0
    )
    assert q("SELECT count(*) FROM (SELECT device_id FROM t GROUP BY 1 HAVING count(DISTINCT location) > 1)") == 0
    assert q("SELECT count(*) FROM t WHERE location NOT IN ('berlin', 'london', 'new_york')") == 0
    assert not [p for p in root.rglob(".*")]


def test_maintenance_log_matches_manifest_and_telemetry(generated):
    root, manifest = generated
    m = manifest["maintenance"]
    con = duckdb.connect()
    con.execute(
        f"CREATE TABLE log AS SELECT * FROM read_csv('{root}/landing/maintenance/*/maintenance_log.csv',"
        f" all_varchar=true, filename=true)"
    )
    q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    assert [r[0] for r in con.execute("DESCRIBE SELECT * EXCLUDE (filename) FROM log").fetchall()] == [
        "record_id",
        "device_id",
        "event_time",
        "event_type",
        "component",
        "downtime_minutes",
    ]
    assert q("SELECT count(*) FROM log") == m["rows"] == m["failures"] + m["maintenance"]
    assert q("SELECT count(*) FROM log WHERE event_type = 'failure'") == m["failures"] > 0
    assert q("SELECT count(*) FROM log WHERE event_type = 'maintenance'") == m["maintenance"] > 0
    assert q("SELECT count(DISTINCT record_id) FROM log") == m["rows"]
    assert q("SELECT min(record_id) FROM log") == "M0001"
    assert (
        q(
            "SELECT count(*) FROM log WHERE component NOT IN ('bearing', 'motor', 'pump', 'sensor')"
            " OR TRY_CAST(downtime_minutes AS INTEGER) IS NULL OR NOT event_time LIKE '%Z'"
            " OR strftime(event_time::TIMESTAMPTZ AT TIME ZONE 'UTC', '%Y-%m-%d/maintenance_log.csv')"
            "    <> regexp_extract(replace(filename, '\\', '/'), '[^/]+/[^/]+$')"
        )
        == 0
    )
    per_day = con.execute("SELECT filename, count(*) FROM log GROUP BY 1").fetchall()
    assert len(per_day) == manifest["days"] and all(2 <= n <= 5 for _, n in per_day)

    tele = _telemetry_counts(root)["con"]
    tele.execute(
        "CREATE TABLE log AS SELECT * FROM read_csv("
        f"'{root}/landing/maintenance/*/maintenance_log.csv', all_varchar=true)"
    )
    tq = lambda sql: tele.execute(sql).fetchone()[0]  # noqa: E731
    # maintenance_flag marks exactly the device-hours with a maintenance record.
    assert tq("SELECT count(*) FROM (SELECT DISTINCT * FROM t) WHERE maintenance_flag") == m["maintenance"]
    assert (
        tq(
            "SELECT count(*) FROM log l JOIN t ON t.device_id = l.device_id AND t.maintenance_flag"
            " AND date_trunc('hour', t.timestamp) = date_trunc('hour', (l.event_time::TIMESTAMPTZ AT TIME ZONE 'UTC'))"
            " WHERE l.event_type = 'maintenance'"
        )
        == m["maintenance"]
    )
    # Failures are preceded by a rise in vibration and temperature in the same device's prior hours.
    before, baseline = tele.execute(
        "SELECT avg(t.vibration) FILTER (WHERE t.timestamp < f.at AND t.timestamp >= f.at - INTERVAL 2 HOUR),"
        " avg(t.vibration) FILTER (WHERE t.timestamp < f.at - INTERVAL 8 HOUR)"
        " FROM (SELECT device_id, (event_time::TIMESTAMPTZ AT TIME ZONE 'UTC') AS at FROM log"
        "       WHERE event_type = 'failure') f JOIN t USING (device_id)"
        " WHERE t.vibration BETWEEN 0 AND 100 AND t.temperature BETWEEN 0 AND 200"
    ).fetchone()
    assert before > baseline + 5
