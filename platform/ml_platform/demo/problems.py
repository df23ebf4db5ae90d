"""Known problems to inject into the demo data, each on its own day, to watch the checks find them.

`python -m ml_platform.demo generate ... --problems` writes the usual demo days and then breaks
them the way real sources break; `demo_manifest.json` lists each problem with its day, and
`platform_tests/test_injected_problems.py` asserts exactly which checks fail, at which severity.
Days count back from the last landing day (day -1 is the day before it), so every problem has at
least five normal days before it to be compared with:

- `shifted_amounts` (day -6): every purchase amount ten times larger: the features built from
  amounts drift;
- `half_volume` (day -5): half of the day's events are missing;
- `null_pressure` (day -4): telemetry's pressure, always there, is empty in 40 % of the day's
  readings;
- `orphan_users` (day -3): 5 % of the day's on-time events name users the CRM never had;
- `amount_as_text` (day -2): one file's amounts are written as text ("12,50 EUR");
- `maintenance_stops`: the maintenance log stops landing for its last `STOPPED_DAYS` days.
"""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

# Problem -> day it is injected on, counted back from the last landing day (0).
DAY_PROBLEMS = {
    "shifted_amounts": 6,
    "half_volume": 5,
    "null_pressure": 4,
    "orphan_users": 3,
    "amount_as_text": 2,
}
STOPPED_DAYS = 3
AMOUNT_FACTOR = 10
NULL_SHARE = 0.4
ORPHAN_SHARE = 0.05
MIN_DAYS = max(DAY_PROBLEMS.values()) + 6


def problem_days(end_date: date) -> dict[str, str]:
    """Each problem's landing day (the maintenance log's first missing day for `maintenance_stops`)."""
    days = {name: (end_date - timedelta(days=back)).isoformat() for name, back in DAY_PROBLEMS.items()}
    days["maintenance_stops"] = (end_date - timedelta(days=STOPPED_DAYS - 1)).isoformat()
    return days


def break_event_rows(problem: str | None, rows: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """One landing day's event rows (category, row) with `problem` applied (None: unchanged).

    Deterministic: which rows are hit depends on their position only. Orphans are injected into
    the day's on-time events only, so they show on that event day and no other. `amount_as_text`
    is applied when the day's files are written (`amount_as_text`), since it concerns one file."""
    if problem == "half_volume":
        return rows[::2]
    for position, (category, row) in enumerate(rows):
        if problem == "shifted_amounts" and row["amount"] is not None:
            row["amount"] = f"{float(row['amount']) * AMOUNT_FACTOR:.2f}"
        elif problem == "orphan_users" and category == "on_time" and position % round(1 / ORPHAN_SHARE) == 0:
            row["user_id"] = f"X{position:06d}"
    return rows


def amount_as_text(rows: list[dict]) -> list[dict]:
    """A file's rows with every amount written the way a spreadsheet export in German would."""
    return [
        {**row, "amount": None if row["amount"] is None else row["amount"].replace(".", ",") + " EUR"} for row in rows
    ]


def empty_pressure(data_dir: Path, day: str) -> None:
    """Telemetry of `day` with the pressure missing in NULL_SHARE of each file's readings."""
    for path in sorted((Path(data_dir) / "landing" / "telemetry" / day).glob("*.jsonl")):
        readings = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        for position, reading in enumerate(readings):
            if position % 10 < NULL_SHARE * 10:
                reading["pressure"] = None
        path.write_text("".join(json.dumps(r) + "\n" for r in readings), encoding="utf-8")


def stop_maintenance(data_dir: Path, end_date: date) -> None:
    """Remove the maintenance log's last STOPPED_DAYS landing days: the source stopped landing."""
    for back in range(STOPPED_DAYS):
        shutil.rmtree(Path(data_dir) / "landing" / "maintenance" / (end_date - timedelta(days=back)).isoformat())
