"""The device_health feature view on hand-computed fixtures: rows as of each hour's end from the
readings before it, the 1 h and 24 h windows' edges, std with one reading, both anomaly flags
firing and not, nulls, and a late telemetry file recomputing exactly the partitions it can change
without leaking into training rows from before it landed."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import pandas as pd

from conftest import days, write_landing
from ml_platform.training import get_training_set
from ml_platform.warehouse import connect

HEALTH = dg.AssetKey("device_health")
CLEAN = dg.AssetKey("clean_telemetry")
KEYS = "device_id, strftime(as_of, '%m-%d %H:%M'), strftime(as_of_date, '%m-%d'), strftime(created_at, '%m-%d')"
TEMPERATURE = (
    f"{KEYS}, location, readings_1h, readings_24h, round(temperature_mean_1h, 4), round(temperature_std_1h, 4), "
    "temperature_max_1h, round(temperature_mean_24h, 4), round(temperature_std_24h, 4), temperature_max_24h, "
    "round(temperature_change_1h, 4), temperature_anomaly"
)
VIBRATION = (
    f"{KEYS}, round(vibration_mean_1h, 4), round(vibration_std_1h, 4), vibration_max_1h, "
    "round(vibration_mean_24h, 4), round(vibration_std_24h, 4), vibration_max_24h, "
    "round(vibration_change_1h, 4), vibration_anomaly, round(power_mean_24h, 4)"
)


def _reading(device, timestamp, temperature, vibration, power, location):
    return {
        "device_id": device,
        "timestamp": timestamp,
        "temperature": temperature,
        "vibration": vibration,
        "pressure": 3.0,
        "rpm": 1500,
        "power_consumption": power,
        "operating_hours": 1000.0,
        "maintenance_flag": False,
        "location": location,
    }


def _land(data_dir, landing_date: str, name: str, readings: list[tuple]) -> None:
    text = "".join(json.dumps(_reading(*r)) + "\n" for r in readings)
    write_landing(data_dir, "telemetry", landing_date, name, text)


def _land_fixture(data_dir) -> None:
    # D2's hour 00: 15 readings of 50 °C; vibration in three of them (1, 1, 5), null in the rest.
    d2_hour0 = [
        ("D2", f"2026-11-02T00:{2 * i:02d}:00Z", 50.0, [1.0, 1.0, 5.0][i] if i < 3 else None, 10.0, "london")
        for i in range(15)
    ]
    _land(
        data_dir,
        "2026-11-02",
        "telemetry.jsonl",
        [
            # D1 hour 10: one reading exactly at 10:00:00 (it opens the hour) and one a second before 11:00.
            ("D1", "2026-11-02T10:00:00Z", 60.0, 2.0, 10.0, "berlin"),
            ("D1", "2026-11-02T10:30:00Z", 62.0, 2.0, 12.0, "berlin"),
            ("D1", "2026-11-02T10:59:59Z", 64.0, 8.0, 14.0, "berlin"),
            # Exactly at the end of hour 10: it belongs to hour 11, not to the row as of 11:00.
            ("D1", "2026-11-02T11:00:00Z", 70.0, 9.0, 16.0, "berlin"),
            *d2_hour0,
            # D2 hour 01: one hot reading, 100 °C.
            ("D2", "2026-11-02T01:00:00Z", 100.0, 3.0, 10.0, "london"),
            # D3: a single reading in the last hour of the day, without vibration, power or location.
            ("D3", "2026-11-02T23:30:00Z", 55.0, None, None, None),
        ],
    )
    _land(
        data_dir,
        "2026-11-03",
        "telemetry.jsonl",
        [
            ("D1", "2026-11-03T09:30:00Z", 68.0, 6.0, 18.0, "berlin"),
            ("D1", "2026-11-03T10:00:00Z", 66.0, 5.0, 20.0, "berlin"),
        ],
    )


def _build(runner) -> None:
    runner.run("raw_telemetry", range_=("2026-11-02", "2026-11-03"))
    runner.run("clean_telemetry", range_=("2026-11-02", "2026-11-03"))
    runner.run("device_health", range_=("2026-11-02", "2026-11-03"))


def test_rows_as_of_each_hour_end(runner, data_dir):
    _land_fixture(data_dir)
    _build(runner)

    assert runner.query(f"SELECT {TEMPERATURE} FROM device_health ORDER BY device_id, as_of") == [
        # device, as of, partition, created (midnight), location, readings 1h/24h,
        # temperature 1h mean/std/max, 24h mean/std/max, change vs the previous hour, anomaly
        #
        # Hour 10 holds 60, 62, 64 (10:00:00 included, 11:00:00 not): mean 62, std sqrt(8 / 2) = 2.
        # The flag: the farthest reading is 2 from the mean, not more than 3 x 2.
        ("D1", "11-02 11:00", "11-02", "11-03", "berlin", 3, 3, 62.0, 2.0, 64.0, 62.0, 2.0, 64.0, None, False),
        # One reading (70): no 1 h std. 24 h: 60, 62, 64, 70: mean 64, std sqrt(56 / 3) = 4.3205.
        # Change: 70 - 62. |70 - 64| = 6 is not more than 3 x 4.3205.
        ("D1", "11-02 12:00", "11-02", "11-03", "berlin", 1, 4, 70.0, None, 70.0, 64.0, 4.3205, 70.0, 8.0, False),
        # 24 h window [11-02 10:00, 11-03 10:00): 10:00:00 of the day before is in it (5 readings):
        # 60, 62, 64, 70, 68: mean 64.8, std sqrt(68.8 / 4) = 4.1473. No reading in hour 08: no change.
        # Its inputs landed on 11-02 and 11-03: known from the end of 11-03.
        ("D1", "11-03 10:00", "11-03", "11-04", "berlin", 1, 5, 68.0, None, 68.0, 64.8, 4.1473, 70.0, None, False),
        # [11-02 11:00, 11-03 11:00): 11:00:00 is in, hour 10 of 11-02 out: 70, 68, 66: mean 68, std 2.
        ("D1", "11-03 11:00", "11-03", "11-04", "berlin", 1, 3, 66.0, None, 66.0, 68.0, 2.0, 70.0, -2.0, False),
        # Fifteen equal readings: std 0, and a reading equal to the mean is not "more than 0" away.
        ("D2", "11-02 01:00", "11-02", "11-03", "london", 15, 15, 50.0, 0.0, 50.0, 50.0, 0.0, 50.0, None, False),
        # 15 x 50 and 100: mean 850 / 16 = 53.125, std sqrt((47500 - 850^2 / 16) / 15) = 12.5;
        # 100 is 46.875 away, more than 3 x 12.5 = 37.5: the temperature anomaly fires.
        ("D2", "11-02 02:00", "11-02", "11-03", "london", 1, 16, 100.0, None, 100.0, 53.125, 12.5, 100.0, 50.0, True),
        # The hour 23:00-24:00 of 11-02 is as of 11-03 00:00: partition 11-03. One reading: no std,
        # so the anomaly cannot be told (null); no location in the hour.
        ("D3", "11-03 00:00", "11-03", "11-03", None, 1, 1, 55.0, None, 55.0, 55.0, None, 55.0, None, None),
    ]

    assert runner.query(f"SELECT {VIBRATION} FROM device_health ORDER BY device_id, as_of") == [
        # device, as of, partition, created (midnight), vibration 1h mean/std/max, 24h mean/std/max,
        # change, anomaly, 24 h mean power (kW)
        #
        # 2, 2, 8: mean 4, std sqrt(24 / 2) = 3.4641; the peak 8 is exactly 2 x 4, not above: no anomaly.
        # Power: mean of 10, 12, 14.
        ("D1", "11-02 11:00", "11-02", "11-03", 4.0, 3.4641, 8.0, 4.0, 3.4641, 8.0, None, False, 12.0),
        # 24 h: 2, 2, 8, 9: mean 5.25, std sqrt((153 - 21^2 / 4) / 3) = 3.7749. Power: 52 / 4.
        ("D1", "11-02 12:00", "11-02", "11-03", 9.0, None, 9.0, 5.25, 3.7749, 9.0, 5.0, False, 13.0),
        # 2, 2, 8, 9, 6: mean 5.4, std sqrt(43.2 / 4) = 3.2863. Power: 70 / 5.
        ("D1", "11-03 10:00", "11-03", "11-04", 6.0, None, 6.0, 5.4, 3.2863, 9.0, None, False, 14.0),
        # 9, 6, 5: mean 20 / 3, std sqrt(13 / 3) = 2.0817. Change 5 - 6. Power: 16, 18, 20.
        ("D1", "11-03 11:00", "11-03", "11-04", 5.0, None, 5.0, 6.6667, 2.0817, 9.0, -1.0, False, 18.0),
        # Nulls are skipped: 1, 1, 5 of 15 readings: mean 7 / 3, std sqrt(16 / 3) = 2.3094;
        # the peak 5 is above 2 x 7 / 3 = 4.6667: the vibration anomaly fires.
        ("D2", "11-02 01:00", "11-02", "11-03", 2.3333, 2.3094, 5.0, 2.3333, 2.3094, 5.0, None, True, 10.0),
        # 3 alone in its hour cannot be twice its own mean. 24 h: 1, 1, 5, 3: mean 2.5, std sqrt(11 / 3).
        ("D2", "11-02 02:00", "11-02", "11-03", 3.0, None, 3.0, 2.5, 1.9149, 5.0, 0.6667, False, 10.0),
        # No vibration and no power at all: every statistic, the change and the flag are null.
        ("D3", "11-03 00:00", "11-03", "11-03", None, None, None, None, None, None, None, None, None),
    ]


def test_late_file_recomputes_the_partitions_it_can_change_and_never_leaks(runner, data_dir, instance, defs):
    from helpers import Ticker

    _land_fixture(data_dir)
    _build(runner)
    # Automation as it runs on 2026-11-06: partitions up to 11-06 exist.
    ticker = Ticker(defs, instance, now=dt.datetime(2026, 11, 6, 6, tzinfo=dt.UTC))
    ticker.tick()
    ticker.cancel_submitted()  # whatever the first tick found to do, not this test's business
    # Two readings of 11-03 land a day late, on 11-04 (within telemetry's 1-day tolerance).
    _land(
        data_dir,
        "2026-11-04",
        "late.jsonl",
        [
            ("D1", "2026-11-03T10:30:00Z", 70.0, 5.0, 22.0, "berlin"),
            ("D1", "2026-11-03T23:15:00Z", 64.0, 4.0, 10.0, "berlin"),
        ],
    )
    runner.run("raw_telemetry", partition="2026-11-04")
    # A file landed on 11-04 can hold readings of 11-03 … 11-05 (the clean days requested), and a
    # clean day D feeds the rows as of D and D+1 (24 h windows): device_health 11-03 … 11-06, on
    # the tick after those clean days are written (requested beside them, it would run before
    # them and again after). Other assets reading clean_telemetry (labels, other views) may be
    # requested too: only these two entries are this view's business.
    requested = ticker.tick()
    assert requested[CLEAN] == set(days("2026-11-03", "2026-11-05"))
    assert HEALTH not in requested
    runner.run("clean_telemetry", range_=("2026-11-03", "2026-11-05"))
    assert ticker.tick()[HEALTH] == set(days("2026-11-03", "2026-11-06"))
    assert HEALTH not in ticker.tick()
    runner.run("device_health", range_=("2026-11-03", "2026-11-06"))

    columns = (
        f"{KEYS}, readings_1h, readings_24h, round(temperature_mean_1h, 4), round(temperature_mean_24h, 4), "
        "round(temperature_std_24h, 4), round(temperature_change_1h, 4)"
    )
    assert runner.query(f"SELECT {columns} FROM device_health WHERE device_id = 'D1' ORDER BY as_of") == [
        ("D1", "11-02 11:00", "11-02", "11-03", 3, 3, 62.0, 62.0, 2.0, None),
        ("D1", "11-02 12:00", "11-02", "11-03", 1, 4, 70.0, 64.0, 4.3205, 8.0),
        # Before 10:30: unchanged, still known from the end of 11-03.
        ("D1", "11-03 10:00", "11-03", "11-04", 1, 5, 68.0, 64.8, 4.1473, None),
        # Hour 10 now holds 66 and 70 (mean 68, change 68 - 68); 24 h: 70, 68, 66, 70: mean 68.5,
        # std sqrt(11 / 3) = 1.9149. Known only from the end of the late file's landing day.
        ("D1", "11-03 11:00", "11-03", "11-05", 2, 4, 68.0, 68.5, 1.9149, 0.0),
        # A new row as of midnight, in partition 11-04: 68, 66, 70, 64: mean 67, std sqrt(20 / 3).
        ("D1", "11-04 00:00", "11-04", "11-05", 1, 4, 64.0, 67.0, 2.582, None),
    ]

    entities = pd.DataFrame(
        {
            "device_id": ["D1", "D1", "D1"],
            "event_timestamp": pd.to_datetime(["2026-11-04 12:00:00", "2026-11-04 12:00:01", "2026-11-05 00:00:00"]),
        }
    )
    con = connect(data_dir / "warehouse.duckdb", read_only=True)
    try:
        training = get_training_set(
            con, entities, ["device_health:readings_24h", "device_health:temperature_mean_24h"]
        ).fetchall()
    finally:
        con.close()
    assert training == [
        # The recomputed 11:00 row is not known until 11-05: the newest known row is as of 10:00,
        # exactly 26 h old, still within the TTL.
        ("D1", dt.datetime(2026, 11, 4, 12), 5, 64.8),
        # A second later it is older than the TTL: no values rather than stale ones.
        ("D1", dt.datetime(2026, 11, 4, 12, 0, 1), None, None),
        # From the end of 11-04 the late rows are known: the newest is as of 11-04 00:00.
        ("D1", dt.datetime(2026, 11, 5), 4, 67.0),
    ]
