"""Device telemetry and the maintenance log: composite keys, validity ranges, strict schemas."""

from __future__ import annotations

import datetime as dt
import json

from conftest import write_landing
from helpers import contract_evaluations, run_check, run_metadata


def _reading(device, hour, temperature=60.5, vibration=4.2, **extra):
    return {
        "device_id": device,
        "timestamp": f"2026-11-02T{hour:02d}:10:00Z",
        "temperature": temperature,
        "vibration": vibration,
        "pressure": 3.1,
        "rpm": 1500,
        "power_consumption": 14.8,
        "operating_hours": 1000 + hour,
        "maintenance_flag": False,
        "location": "plant-a",
        **extra,
    }


def _jsonl(rows):
    return "".join(json.dumps(r) + "\n" for r in rows)


def test_telemetry_ranges_and_composite_key(runner, data_dir):
    write_landing(
        data_dir,
        "telemetry",
        "2026-11-02",
        "telemetry_10.jsonl",
        _jsonl(
            [
                _reading("D001", 10),
                _reading("D001", 10),  # producer retry: same (device, timestamp)
                _reading("D002", 10, maintenance_flag=True),
                _reading("D003", 10, temperature=250.0),  # above 200 °C
                _reading("D004", 10, vibration=150.0),  # above 100 mm/s
                _reading("D005", 10, temperature=-5.0),  # below 0 °C
            ]
        ),
    )
    write_landing(data_dir, "telemetry", "2026-11-02", "telemetry_11.jsonl", _jsonl([_reading("D001", 11)]))
    runner.run("raw_telemetry", partition="2026-11-02")
    result = runner.run("clean_telemetry", partition="2026-11-02", expect_success=False)

    assert runner.query(
        "SELECT device_id, timestamp, reading_date, temperature, rpm, maintenance_flag FROM clean_telemetry ORDER BY 1, 2"
    ) == [
        ("D001", dt.datetime(2026, 11, 2, 10, 10), dt.date(2026, 11, 2), 60.5, 1500, False),
        ("D001", dt.datetime(2026, 11, 2, 11, 10), dt.date(2026, 11, 2), 60.5, 1500, False),
        ("D002", dt.datetime(2026, 11, 2, 10, 10), dt.date(2026, 11, 2), 60.5, 1500, True),
    ]
    assert runner.query("SELECT record->>'device_id', rule FROM quarantine_telemetry ORDER BY 1") == [
        ("D003", "temperature:less_than_or_equal_to(200.0)"),
        ("D004", "vibration:less_than_or_equal_to(100.0)"),
        ("D005", "temperature:greater_than_or_equal_to(0.0)"),
    ]
    meta = run_metadata(result)
    assert (meta["duplicates_removed"], meta["quarantined"]) == (1, 3)
    [check] = contract_evaluations(result)
    assert check.passed is False  # 3 of 7 quarantined > 5%


MAINTENANCE_HEADER = "record_id,device_id,event_time,event_type,component,downtime_minutes\n"


def test_maintenance_log_is_strict(runner, data_dir):
    write_landing(
        data_dir,
        "maintenance",
        "2026-11-02",
        "maintenance_log.csv",
        MAINTENANCE_HEADER
        + "M0001,D001,2026-11-02T08:00:00Z,failure,bearing,120\n"
        + "M0002,D002,2026-11-02T09:30:00+01:00,maintenance,pump,30\n",
    )
    # A later export adds a column: the strict policy rejects the whole file, row by row.
    write_landing(
        data_dir,
        "maintenance",
        "2026-11-03",
        "maintenance_log.csv",
        MAINTENANCE_HEADER.replace("\n", ",technician\n") + "M0003,D003,2026-11-03T07:00:00Z,failure,motor,60,ann\n",
    )
    raw = runner.run("raw_maintenance", range_=("2026-11-02", "2026-11-03"))
    runner.run("clean_maintenance", partition="2026-11-02")
    runner.run("clean_maintenance", partition="2026-11-03", expect_success=False)

    assert runner.query(
        "SELECT record_id, event_time, event_type, downtime_minutes FROM clean_maintenance ORDER BY 1"
    ) == [
        ("M0001", dt.datetime(2026, 11, 2, 8), "failure", 120),
        ("M0002", dt.datetime(2026, 11, 2, 8, 30), "maintenance", 30),
    ]
    assert runner.query("SELECT record->>'record_id', rule FROM quarantine_maintenance") == [
        ("M0003", "_schema:strict(columns differ from the current version)")
    ]
    schema = run_check(raw, "raw_maintenance", "schema")
    assert (schema.passed, schema.metadata["rejected_batches"].value) == (False, 1)
    assert schema.metadata["changes"].value == [
        {
            "batch": "maintenance/2026-11-03/maintenance_log.csv",
            "schema_version": "unknown",
            "verdict": "rejected",
            "added": ["technician"],
            "missing": [],
        }
    ]
