"""Deterministic IoT demo data: hourly device telemetry and the maintenance / failure log.

Telemetry lands as JSON Lines micro-batches, one file per hour
(`landing/telemetry/<YYYY-MM-DD>/telemetry_<HH>.jsonl`) holding one reading per device, plus
exactly counted defects: out-of-range temperatures and vibrations, and exact duplicate lines
(gateway retries). The maintenance log (`landing/maintenance/<YYYY-MM-DD>/maintenance_log.csv`)
gives the labels; before each failure the device's vibration and temperature rise for a few hours.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from ml_platform.demo.files import count, write_bytes, write_csv

N_DEVICES = 20
# The weather API's locations (demo/weather_api.py), so telemetry joins the weather by location.
LOCATIONS = ("berlin", "london", "new_york")
TELEMETRY_DUPLICATE_RATE = 0.01
TEMPERATURE_BAD_RATE = 0.005
VIBRATION_BAD_RATE = 0.005
BAD_TEMPERATURES = (250.0, -5.0)
BAD_VIBRATIONS = (150.0, 120.0, -1.0)
TEMPERATURE_RANGE = (0.0, 200.0)
VIBRATION_RANGE = (0.0, 100.0)
# Hours before a failure in which the device degrades, and the rise per hour of approach.
PRECURSOR_HOURS = 4
PRECURSOR_TEMPERATURE_STEP = 8.0
PRECURSOR_VIBRATION_STEP = 3.0

MAINTENANCE_COLUMNS = ["record_id", "device_id", "event_time", "event_type", "component", "downtime_minutes"]
MAINTENANCE_PER_DAY = (2, 5)
COMPONENTS = ("bearing", "motor", "pump", "sensor")
UTC = UTC


def device_id(i: int) -> str:
    return f"D{i:03d}"


def write_maintenance_logs(
    data_dir: Path, seed: int, landing_dates: list[date], hours_per_day: int
) -> tuple[list[dict], dict]:
    """Write one maintenance log per landing date; return the records and the manifest part.

    Every day has 2-5 records on distinct devices, at least one failure and one maintenance.
    Records fall in the first `hours_per_day` hours so they line up with the telemetry files;
    failures leave room for their precursor hours before them when the day allows it.
    """
    rng = random.Random(f"maintenance:{seed}")
    devices = [device_id(i) for i in range(1, N_DEVICES + 1)]
    records: list[dict] = []
    for landing in landing_dates:
        midnight = datetime(landing.year, landing.month, landing.day, tzinfo=UTC)
        n = rng.randint(*MAINTENANCE_PER_DAY)
        n_failures = rng.randint(1, min(2, n - 1))
        day = []
        for k, device in enumerate(rng.sample(devices, n)):
            failure = k < n_failures
            first_hour = min(PRECURSOR_HOURS, hours_per_day - 1) if failure else 0
            hour = rng.randrange(first_hour, hours_per_day)
            instant = midnight + timedelta(hours=hour, seconds=rng.randrange(3600))
            day.append(
                {
                    "device_id": device,
                    "event_time": instant.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "event_type": "failure" if failure else "maintenance",
                    "component": rng.choice(COMPONENTS),
                    "downtime_minutes": rng.randint(120, 1440) if failure else rng.randint(30, 240),
                    "_landing": landing,
                    "_hour": hour,
                }
            )
        day.sort(key=lambda r: (r["event_time"], r["device_id"]))
        for record in day:
            record["record_id"] = f"M{len(records) + 1:04d}"
            records.append(record)
        path = data_dir / "landing" / "maintenance" / landing.isoformat() / "maintenance_log.csv"
        write_csv(path, MAINTENANCE_COLUMNS, [[r[c] for c in MAINTENANCE_COLUMNS] for r in day])

    failures = sum(r["event_type"] == "failure" for r in records)
    return records, {"rows": len(records), "failures": failures, "maintenance": len(records) - failures}


def write_telemetry(
    data_dir: Path, seed: int, landing_dates: list[date], hours_per_day: int, records: list[dict]
) -> dict:
    """Write `hours_per_day` hourly telemetry files per landing date; return the manifest part.

    `records` (from write_maintenance_logs) set maintenance_flag and shape the failure precursors.
    """
    if not 1 <= hours_per_day <= 24:
        raise ValueError("telemetry_hours_per_day must be between 1 and 24")
    rng = random.Random(f"telemetry:{seed}")
    devices = [device_id(i) for i in range(1, N_DEVICES + 1)]
    location = {d: rng.choice(LOCATIONS) for d in devices}
    operating_hours = {d: float(rng.randint(500, 20_000)) for d in devices}
    maintained = {(r["_landing"], r["device_id"], r["_hour"]) for r in records if r["event_type"] == "maintenance"}
    failure_hour = {(r["_landing"], r["device_id"]): r["_hour"] for r in records if r["event_type"] == "failure"}

    totals = {
        "files": 0,
        "rows": 0,
        "valid_unique": 0,
        "duplicates": 0,
        "bad_rows": {"temperature_out_of_range": 0, "vibration_out_of_range": 0},
        "devices": N_DEVICES,
        "hours_per_day": hours_per_day,
    }
    for landing in landing_dates:
        midnight = datetime(landing.year, landing.month, landing.day, tzinfo=UTC)
        # Slots are (hour, device) readings of the day, numbered hour * N_DEVICES + device index.
        n_slots = hours_per_day * N_DEVICES
        n_temp = max(1, count(n_slots, TEMPERATURE_BAD_RATE))
        n_vib = max(1, count(n_slots, VIBRATION_BAD_RATE))
        bad = rng.sample(range(n_slots), n_temp + n_vib)
        bad_kind = {slot: "temperature" for slot in bad[:n_temp]} | {slot: "vibration" for slot in bad[n_temp:]}
        valid = [slot for slot in range(n_slots) if slot not in bad_kind]
        n_dup = min(len(valid), max(1, count(n_slots, TELEMETRY_DUPLICATE_RATE)))
        duplicated = set(rng.sample(valid, n_dup))
        totals["bad_rows"]["temperature_out_of_range"] += n_temp
        totals["bad_rows"]["vibration_out_of_range"] += n_vib
        totals["duplicates"] += n_dup
        totals["valid_unique"] += len(valid)

        for hour in range(hours_per_day):
            lines = []
            for k, device in enumerate(devices):
                operating_hours[device] += 1.0
                reading = _reading(
                    rng,
                    device,
                    midnight + timedelta(hours=hour),
                    location[device],
                    operating_hours[device],
                    (landing, device, hour) in maintained,
                )
                rise = PRECURSOR_HOURS + 1 - (failure_hour.get((landing, device), -100) - hour)
                if 1 <= rise <= PRECURSOR_HOURS:
                    reading["temperature"] = _clip(
                        reading["temperature"] + PRECURSOR_TEMPERATURE_STEP * rise, *TEMPERATURE_RANGE, 2
                    )
                    reading["vibration"] = _clip(
                        reading["vibration"] + PRECURSOR_VIBRATION_STEP * rise, *VIBRATION_RANGE, 2
                    )
                kind = bad_kind.get(hour * N_DEVICES + k)
                if kind == "temperature":
                    reading["temperature"] = rng.choice(BAD_TEMPERATURES)
                elif kind == "vibration":
                    reading["vibration"] = rng.choice(BAD_VIBRATIONS)
                lines.append(json.dumps(reading) + "\n")

            # Gateway retries: an exact copy of a valid line, later in the same file.
            keyed = [((i, 0, 0), line) for i, line in enumerate(lines)]
            for k in range(N_DEVICES):
                if hour * N_DEVICES + k in duplicated:
                    keyed.append(((rng.randint(k + 1, len(lines)), 1, k), lines[k]))
            keyed.sort(key=lambda pair: pair[0])
            path = data_dir / "landing" / "telemetry" / landing.isoformat() / f"telemetry_{hour:02d}.jsonl"
            write_bytes(path, "".join(line for _, line in keyed).encode("utf-8"))
            totals["files"] += 1
            totals["rows"] += len(keyed)
    return totals


def _reading(
    rng: random.Random, device: str, hour_start: datetime, location: str, operating_hours: float, maintenance: bool
) -> dict:
    """One valid reading of `device` within the hour starting at `hour_start`."""
    instant = hour_start + timedelta(seconds=rng.randrange(3600))
    return {
        "device_id": device,
        "timestamp": instant.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "temperature": _clip(rng.gauss(60.0, 15.0), *TEMPERATURE_RANGE, 2),
        "vibration": _clip(rng.gauss(5.0, 3.0), *VIBRATION_RANGE, 2),
        "pressure": _clip(rng.gauss(3.0, 0.5), 0.0, 100.0, 3),
        "rpm": int(_clip(rng.gauss(1500.0, 200.0), 0.0, 10_000.0, 0)),
        "power_consumption": _clip(rng.gauss(15.0, 4.0), 0.0, 1000.0, 2),
        "operating_hours": operating_hours,
        "maintenance_flag": maintenance,
        "location": location,
    }


def _clip(value: float, low: float, high: float, digits: int) -> float:
    return round(min(high, max(low, value)), digits)
