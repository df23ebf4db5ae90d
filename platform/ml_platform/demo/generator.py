"""Deterministic demo data with injected, exactly-counted defects and changes.

The same arguments always produce byte-identical files, so the generated data doubles as
test fixtures: `demo_manifest.json` records what was injected and the platform's counts
(dedup, late arrivals, quarantined rows, dimension versions) must reconcile with it exactly.

`generate` orchestrates every source; each has its own random stream derived from the seed,
so adding a source never changes another's files. Events are written here; the users and
products snapshots live in `dimensions`, telemetry and the maintenance log in `telemetry`.
"""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ml_platform.demo import problems as known_problems
from ml_platform.demo.dimensions import (
    MIN_USERS,
    N_PRODUCTS,
    write_product_snapshots,
    write_user_snapshots,
)
from ml_platform.demo.dimensions import (
    user_id as _user_id,
)
from ml_platform.demo.files import atomic_write as _atomic_write
from ml_platform.demo.files import count as _count
from ml_platform.demo.telemetry import write_maintenance_logs, write_telemetry

LATE_TOLERANCE_DAYS = 3
FILES_PER_DAY = 3
FORMATS = ("csv", "jsonl", "parquet")
SCHEMA_VERSIONS = ("v1", "v2", "v3")
BASE_COLUMNS = ["event_id", "user_id", "event_type", "event_time", "product_id", "amount"]
SCHEMA_COLUMNS = {
    "v1": BASE_COLUMNS,
    "v2": BASE_COLUMNS + ["device_type", "session_id"],
    "v3": BASE_COLUMNS + ["device", "session_id"],
}

EVENT_TYPE_WEIGHTS = {
    "page_view": 40,
    "product_view": 25,
    "search": 15,
    "add_to_cart": 10,
    "remove_from_cart": 5,
    "purchase": 5,
}
PRODUCT_EVENT_TYPES = {"product_view", "add_to_cart", "remove_from_cart", "purchase"}
DEVICES = ("mobile", "desktop", "tablet")
# Users in the first snapshot: enough that daily churn rates give whole, non-zero counts.
MIN_INITIAL_USERS = 4 * MIN_USERS
EVENTS_PER_USER = 5
NON_UTC_OFFSETS = ("+05:30", "-08:00", "+09:00", "-03:00", "+01:00")

LATE_RATE = 0.08
TOO_LATE_RATE = 0.01
DUPLICATE_RATE = 0.03
BAD_ROW_RATE = 0.01  # per kind
NON_UTC_RATE = 0.10
BAD_KINDS = (
    "event_id_null",
    "user_id_null",
    "event_time_unparsable",
    "amount_negative",
    "amount_absurd",
    "event_type_unknown",
)
UNPARSABLE_TIMES = ("not-a-timestamp", "2026-13-45T99:00:00Z", "yesterday")
UNKNOWN_EVENT_TYPES = ("clck", "PURCHASE_V0", "hover")
UTC = UTC


def generate(
    data_dir: Path,
    days: int,
    events_per_day: int,
    seed: int,
    end_date: date,
    telemetry_hours_per_day: int = 24,
    problems: bool = False,
) -> dict:
    """Write every source's landing files and `demo_manifest.json` under `data_dir`; return the manifest.
    `problems`: break some days as `ml_platform.demo.problems` describes."""
    if days < 1 or events_per_day < 1:
        raise ValueError("days and events_per_day must be >= 1")
    if problems and days < known_problems.MIN_DAYS:
        raise ValueError(f"injected problems need at least {known_problems.MIN_DAYS} days")
    if not 1 <= telemetry_hours_per_day <= 24:
        raise ValueError("telemetry_hours_per_day must be between 1 and 24")
    data_dir = Path(data_dir)
    rng = random.Random(seed)
    landing_dates = [end_date - timedelta(days=days - 1 - i) for i in range(days)]
    # Events only reference users present in every snapshot (first one included).
    user_ids, users = write_user_snapshots(
        data_dir, seed, landing_dates, max(MIN_INITIAL_USERS, events_per_day // EVENTS_PER_USER)
    )
    products = write_product_snapshots(data_dir, seed, landing_dates)
    records, maintenance = write_maintenance_logs(data_dir, seed, landing_dates, telemetry_hours_per_day)
    telemetry = write_telemetry(data_dir, seed, landing_dates, telemetry_hours_per_day, records)

    files: list[dict] = []
    totals = {
        "rows": 0,
        "unique_valid_events": 0,
        "duplicates": 0,
        "late_within_tolerance": 0,
        "late_beyond_tolerance": 0,
        "non_utc_offsets": 0,
        "bad_rows": {kind: 0 for kind in BAD_KINDS},
    }
    clean_by_date: dict[str, int] = {}
    injected = known_problems.problem_days(end_date) if problems else {}
    problem_of_day = {day: name for name, day in injected.items() if name in known_problems.DAY_PROBLEMS}

    for day_index, landing in enumerate(landing_dates):
        rows = _day_rows(rng, landing, events_per_day, user_ids, days >= 2)
        problem = problem_of_day.get(landing.isoformat())
        rows = known_problems.break_event_rows(problem, rows)
        for category, row in rows:
            totals["rows"] += 1
            if row["_non_utc"]:
                totals["non_utc_offsets"] += 1
            if category in ("on_time", "late"):
                totals["unique_valid_events"] += 1
                event_day = row["_instant"].date().isoformat()
                clean_by_date[event_day] = clean_by_date.get(event_day, 0) + 1
                if category == "late":
                    totals["late_within_tolerance"] += 1
            elif category == "duplicate":
                totals["duplicates"] += 1
            elif category == "too_late":
                totals["late_beyond_tolerance"] += 1
            else:
                totals["bad_rows"][category] += 1

        folder = data_dir / "landing" / "events" / landing.isoformat()
        for file_index, chunk in enumerate(_split(rows, FILES_PER_DAY)):
            # Format and version rotate with different strides so that within 3 days every
            # format carries every schema version, and every day has all formats.
            fmt = FORMATS[(file_index + day_index) % len(FORMATS)]
            version = SCHEMA_VERSIONS[(file_index + 2 * day_index) % len(SCHEMA_VERSIONS)]
            path = folder / f"events_{landing.isoformat()}_{file_index + 1:02d}.{fmt}"
            file_rows = [row for _, row in chunk]
            if problem == "amount_as_text" and file_index == 0:
                file_rows = known_problems.amount_as_text(file_rows)
            write_events_file(path, fmt, version, file_rows)
            files.append(
                {
                    "path": path.relative_to(data_dir).as_posix(),
                    "landing_date": landing.isoformat(),
                    "format": fmt,
                    "schema_version": version,
                    "rows": len(chunk),
                }
            )

    manifest = {
        "seed": seed,
        "days": days,
        "events_per_day": events_per_day,
        "start_date": landing_dates[0].isoformat(),
        "end_date": landing_dates[-1].isoformat(),
        "late_tolerance_days": LATE_TOLERANCE_DAYS,
        "files": files,
        "totals": totals,
        "expected_clean_by_event_date": dict(sorted(clean_by_date.items())),
        "users": users,
        "products": products,
        "telemetry": telemetry,
        "maintenance": maintenance,
        **({"problems": injected} if problems else {}),
    }
    if problems:
        known_problems.empty_pressure(data_dir, injected["null_pressure"])
        known_problems.stop_maintenance(data_dir, end_date)
    text = json.dumps(manifest, sort_keys=True, indent=2) + "\n"
    _atomic_write(data_dir / "demo_manifest.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return manifest


def write_drip_file(
    data_dir: Path,
    landing_date: date,
    seq: int,
    seed: int,
    events: int = 20,
    now: datetime | None = None,
) -> Path:
    """Write one small, fully valid, on-time events file for `landing_date`; return its path.

    `seq` becomes the file number and part of every event_id, so successive drips never
    collide with each other or with the generated files (which use numbers 01-03).
    When `now` is given, event times stay at or before it so live data never looks future-dated.
    """
    # A string seed is hashed deterministically (unlike hash() of a tuple).
    rng = random.Random(f"drip:{seed}:{landing_date.isoformat()}:{seq}")
    fmt = FORMATS[seq % len(FORMATS)]
    version = SCHEMA_VERSIONS[(seq // len(FORMATS)) % len(SCHEMA_VERSIONS)]
    # Drip does not know the users snapshots, but U00001..U<MIN_USERS> are in every one of them.
    user_ids = [_user_id(i) for i in range(1, MIN_USERS + 1)]
    midnight = datetime(landing_date.year, landing_date.month, landing_date.day, tzinfo=UTC)
    span = 86400 if now is None else int((min(now, midnight + timedelta(days=1)) - midnight).total_seconds())
    span = max(span, 1)
    compact = landing_date.strftime("%Y%m%d")
    rows = []
    for n in range(1, events + 1):
        instant = midnight + timedelta(seconds=rng.randrange(span))
        row = _valid_row(rng, f"e-{compact}-d{seq:04d}-{n:04d}", rng.choice(user_ids), instant)
        _render_time(rng, row)
        rows.append(row)
    path = (
        Path(data_dir)
        / "landing"
        / "events"
        / landing_date.isoformat()
        / f"events_{landing_date.isoformat()}_{seq:02d}.{fmt}"
    )
    write_events_file(path, fmt, version, rows)
    return path


def write_events_file(path: Path, fmt: str, version: str, rows: list[dict]) -> None:
    """Write rows (canonical keys) in the given format and schema version, atomically."""
    columns = SCHEMA_COLUMNS[version]
    # v3 renamed device_type to device; rows always carry the canonical name.
    source = {c: ("device_type" if c == "device" else c) for c in columns}
    records = [[row.get(source[c]) for c in columns] for row in rows]
    path.parent.mkdir(parents=True, exist_ok=True)

    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([["" if v is None else v for v in rec] for rec in records])
        data = buf.getvalue().encode("utf-8")
        _atomic_write(path, lambda tmp: tmp.write_bytes(data))
    elif fmt == "jsonl":
        lines = "".join(json.dumps(dict(zip(columns, rec, strict=True))) + "\n" for rec in records)
        data = lines.encode("utf-8")
        _atomic_write(path, lambda tmp: tmp.write_bytes(data))
    elif fmt == "parquet":
        table = pa.table({c: pa.array([rec[i] for rec in records], type=pa.string()) for i, c in enumerate(columns)})
        _atomic_write(path, lambda tmp: pq.write_table(table, tmp))
    else:
        raise ValueError(f"unknown format {fmt!r}")


def _day_rows(
    rng: random.Random, landing: date, m: int, user_ids: list[str], multi_day: bool
) -> list[tuple[str, dict]]:
    """All rows of one landing date, in file order, tagged with their category."""
    counts = {
        "late": _count(m, LATE_RATE),
        "too_late": _count(m, TOO_LATE_RATE),
        "duplicate": _count(m, DUPLICATE_RATE),
        **{kind: _count(m, BAD_ROW_RATE) for kind in BAD_KINDS},
    }
    if multi_day and m >= 50:
        counts["too_late"] = max(1, counts["too_late"])
    on_time = m - sum(counts.values())
    counts["duplicate"] = min(counts["duplicate"], on_time)
    on_time = m - sum(counts.values())

    categories = ["on_time"] * on_time + [c for c, k in counts.items() if c != "duplicate" for _ in range(k)]
    rng.shuffle(categories)

    midnight = datetime(landing.year, landing.month, landing.day, tzinfo=UTC)
    compact = landing.strftime("%Y%m%d")
    base = []
    for n, category in enumerate(categories, start=1):
        days_back = 0
        if category == "late":
            days_back = rng.randint(1, LATE_TOLERANCE_DAYS)
        elif category == "too_late":
            days_back = rng.randint(LATE_TOLERANCE_DAYS + 1, LATE_TOLERANCE_DAYS + 3)
        instant = midnight - timedelta(days=days_back) + timedelta(seconds=rng.randrange(86400))
        row = _valid_row(rng, f"e-{compact}-{n:06d}", rng.choice(user_ids), instant)
        _inject_defect(rng, row, category)
        _render_time(rng, row)
        base.append((category, row))

    # Producer retries: a copy always lands after its original (later in the same file or
    # in a later file), so "keep the first" dedup keeps the original. Sort keys (i, 0) for
    # originals and (j > i, 1, k) for copies interleave them that way.
    on_time_idx = [i for i, (c, _) in enumerate(base) if c == "on_time"]
    keyed = [((i, 0, 0), item) for i, item in enumerate(base)]
    for k, i in enumerate(rng.sample(on_time_idx, counts["duplicate"])):
        j = rng.randint(i + 1, len(base))
        keyed.append(((j, 1, k), ("duplicate", dict(base[i][1]))))
    keyed.sort(key=lambda pair: pair[0])
    return [item for _, item in keyed]


def _valid_row(rng: random.Random, event_id: str, user_id: str, instant: datetime) -> dict:
    event_type = rng.choices(list(EVENT_TYPE_WEIGHTS), weights=list(EVENT_TYPE_WEIGHTS.values()))[0]
    product_id = f"P{rng.randint(1, N_PRODUCTS):04d}" if event_type in PRODUCT_EVENT_TYPES else None
    amount = None
    if event_type == "purchase":
        amount = f"{min(500.0, max(1.0, rng.lognormvariate(3.3, 0.9))):.2f}"
    return {
        "event_id": event_id,
        "user_id": user_id,
        "event_type": event_type,
        "event_time": None,  # rendered from _instant by _render_time
        "product_id": product_id,
        "amount": amount,
        "device_type": rng.choice(DEVICES),
        "session_id": f"s-{rng.getrandbits(48):012x}",
        "_instant": instant,
        "_non_utc": False,
    }


def _inject_defect(rng: random.Random, row: dict, kind: str) -> None:
    if kind == "event_id_null":
        row["event_id"] = None
    elif kind == "user_id_null":
        row["user_id"] = None
    elif kind == "event_time_unparsable":
        row["_instant"] = None
        row["event_time"] = rng.choice(UNPARSABLE_TIMES)
    elif kind in ("amount_negative", "amount_absurd"):
        row["event_type"] = "purchase"
        row["product_id"] = f"P{rng.randint(1, N_PRODUCTS):04d}"
        value = -rng.uniform(1, 500) if kind == "amount_negative" else rng.uniform(10_001, 500_000)
        row["amount"] = f"{value:.2f}"
    elif kind == "event_type_unknown":
        row["event_type"] = rng.choice(UNKNOWN_EVENT_TYPES)
        row["product_id"] = None
        row["amount"] = None


def _render_time(rng: random.Random, row: dict) -> None:
    """Render the true UTC instant as text; some rows use a non-UTC offset for the same instant."""
    instant = row["_instant"]
    if instant is None:
        return
    if rng.random() < NON_UTC_RATE:
        offset = rng.choice(NON_UTC_OFFSETS)
        sign = -1 if offset[0] == "-" else 1
        delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
        row["event_time"] = instant.astimezone(timezone(sign * delta)).isoformat()
        row["_non_utc"] = True
    elif rng.random() < 0.5:
        row["event_time"] = instant.strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        row["event_time"] = instant.isoformat()


def _split(items: list, parts: int) -> list[list]:
    size, extra = divmod(len(items), parts)
    chunks, start = [], 0
    for p in range(parts):
        end = start + size + (1 if p < extra else 0)
        chunks.append(items[start:end])
        start = end
    return chunks
