"""The consistency audit as users run it: `python -m ml_platform audit --since 4d`, its exit code, the
partitions it names and why, the `audit` check evaluation it records, and the metrics that show it.

Telemetry of the three days before today is built (raw, clean, device_health through today) in a
Dagster instance under a DAGSTER_HOME that the command, a separate process, opens as users' would.
Then: a settled warehouse audits clean; a row changed behind the platform's back is found (built
after everything it reads, yet different); a day rewritten upstream without the view rebuilt is
found as stale since that write.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import dagster as dg
import duckdb
import pytest

from test_convergence import land_readings, telemetry_days

TODAY = dt.datetime.now(dt.UTC).date()
FIRST, LAST = (TODAY - dt.timedelta(days=3)).isoformat(), (TODAY - dt.timedelta(days=1)).isoformat()
CORRUPTED = (TODAY - dt.timedelta(days=2)).isoformat()


@pytest.fixture
def instance(home_instance):
    # The command opens the same storage through DAGSTER_HOME.
    return home_instance


def _audit(home, data_dir) -> subprocess.CompletedProcess:
    env = {**os.environ, "DAGSTER_HOME": str(home), "ML_PLATFORM_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "ml_platform", "audit", "--since", "4d", "--table", "device_health"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _audit_metrics(instance, defs) -> dict[str, float]:
    from ml_platform.__main__ import collector_for

    found = {}
    for family in collector_for(instance, defs).collect():
        if family.name.startswith("ml_platform_audit_"):
            for sample in family.samples:
                if sample.labels.get("asset") == "device_health":
                    found[family.name] = sample.value
    return found


def _rewrite_day_file(table: str, day: str, replaced: str) -> None:
    """Rewrite the Parquet file holding lake table `table`'s `day` in place, with `replaced` (a
    `SELECT * REPLACE` list): what a stray process, or a disk, could do to it."""
    from pyiceberg.expressions import EqualTo

    from ml_platform.lakehouse import tables

    lake = tables.load_table(table)
    (task,) = lake.scan(row_filter=EqualTo(tables.partition_column(lake), day)).plan_files()
    path = task.file.file_path
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(
            f"COPY (SELECT * REPLACE ({replaced}) FROM read_parquet('{path}')) TO '{path}.new' (FORMAT parquet)"
        )
    os.replace(f"{path}.new", path)


def test_the_audit_finds_a_changed_row_and_a_stale_partition(data_dir, runner, instance, home, defs):
    telemetry_days(data_dir, runner, FIRST, LAST)
    runner.run("device_health", range_=(FIRST, TODAY.isoformat()))

    settled = _audit(home, data_dir)
    assert settled.returncode == 0, settled.stdout + settled.stderr
    assert f"audit of 1 tables, {FIRST} .. {TODAY}: 4 partitions checked, 0 differ" in settled.stdout
    assert _audit_metrics(instance, defs) == {
        "ml_platform_audit_partitions_checked": 4.0,
        "ml_platform_audit_partitions_differing": 0.0,
        "ml_platform_audit_timestamp_seconds": pytest.approx(dt.datetime.now(dt.UTC).timestamp(), abs=120),
    }

    # A value changed behind the platform's back: the day's file of the lake table rewritten in place.
    changed = f"CASE WHEN as_of = TIMESTAMP '{CORRUPTED} 11:00:00' THEN 99.0 ELSE temperature_max_1h END"
    _rewrite_day_file("device_health", CORRUPTED, f"{changed} AS temperature_max_1h")
    corrupted = _audit(home, data_dir)
    assert corrupted.returncode == 1, corrupted.stdout + corrupted.stderr
    [line] = [x.strip() for x in corrupted.stdout.splitlines() if x.startswith("  ")]
    assert line.startswith(f"device_health {CORRUPTED}: 1 rows only in the warehouse, 1 only in the recomputation;")
    assert "after everything it reads, yet different" in line
    assert _audit_metrics(instance, defs)["ml_platform_audit_partitions_differing"] == 1.0
    [evaluation] = [
        e
        for e in instance.event_log_storage.get_asset_check_summary_records(
            [dg.AssetCheckKey(dg.AssetKey("device_health"), "audit")]
        ).values()
    ]
    assert evaluation.last_check_execution_record.event.dagster_event.asset_check_evaluation_data.passed is False

    # Rebuilt: clean again. Then a reading of the last day lands and clean is rewritten, the view not.
    runner.run("device_health", partition=CORRUPTED)
    land_readings(data_dir, LAST, "more.jsonl", ("D1", f"{LAST}T12:30:00Z", 70.0))
    runner.run("raw_telemetry", partition=LAST)
    runner.run("clean_telemetry", partition=LAST)
    stale = _audit(home, data_dir)
    assert stale.returncode == 1, stale.stdout + stale.stderr
    # That day's rows, and today's first hours, whose 24 hours reach into it.
    lines = [x.strip() for x in stale.stdout.splitlines() if x.startswith("  ")]
    assert [x.split(":")[0] for x in lines] == [f"device_health {LAST}", f"device_health {TODAY}"]
    assert all(f"stale since clean_telemetry {LAST} was written at" in x for x in lines), lines


def test_stream_feature_views_are_not_audited(defs, capsys):
    """Stream feature views carry no audit check and the command refuses them, saying why: their rows
    are made per micro-batch and stamped with the online store's write time, so no recomputation
    from a day's rows reproduces them (`ml_platform.curated.audit`); `test_stream_features.py`
    checks their values instead."""
    from ml_platform.__main__ import run_audit
    from ml_platform.declarations import discover_curated_tables, discover_labels, discover_stream_views

    audited = {k.asset_key.to_user_string() for k in defs.resolve_asset_graph().asset_check_keys if k.name == "audit"}
    assert audited == {t.name for t in [*discover_curated_tables(), *discover_labels()]}
    streamed = {v.name for v in discover_stream_views()}
    assert streamed == {"user_activity_1h", "user_activity_5m"} and not streamed & audited
    assert run_audit(7, ["user_activity_5m"], record=False) == 2
    assert capsys.readouterr().out == (
        "user_activity_5m: stream feature views are not audited (ml_platform.curated.audit says why)\n"
    )
