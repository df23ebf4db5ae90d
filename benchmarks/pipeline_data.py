"""The pipeline benchmark's input: the demo generator's landing files, scaled up when asked.

`python -m ml_platform.demo generate` writes the events (CSV, JSON Lines and Parquet, three
schema versions, with its counted defects: late rows, duplicates, bad values, non-UTC offsets)
and the users snapshots the features join. Pure-Python generation takes about a minute per
million events, so larger inputs are made from a generated base by copying every events file
`factor` times with a suffix on each event id (`-c2`, `-c3`, ...): each copy keeps the base's
formats, schema versions, defects and duplicates (a duplicate and its original get the same
suffix), and the users snapshots stay as they are. The copies are written by DuckDB, values as
text, so what lands has the same shape as the generator's own files.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb

# A fixed end date keeps every run's partitions identical and well after the platform's first
# partition (2026-01-01), late rows included.
END_DATE = dt.date(2026, 3, 10)


@dataclass(frozen=True)
class Input:
    data_dir: Path
    days: int
    events: int  # landed event rows, defects and duplicates included
    base_events_per_day: int
    factor: int

    @property
    def landing_days(self) -> tuple[dt.date, dt.date]:
        return END_DATE - dt.timedelta(days=self.days - 1), END_DATE

    @property
    def event_days(self) -> tuple[dt.date, dt.date]:
        """Partitions of clean_events and the features: late rows reach 3 days back."""
        first, last = self.landing_days
        return first - dt.timedelta(days=3), last


def prepare(work: Path, days: int, events: int, seed: int, max_base_events: int) -> Input:
    """Landing files for `events` rows over `days` landing days under `work` (reused if present)."""
    factor = max(1, -(-events // max_base_events))
    per_day = events // (days * factor)
    data_dir = work / f"input-{days}d-{per_day}x{factor}-s{seed}"
    done = data_dir / "input.json"
    inp = Input(data_dir, days, per_day * days * factor, per_day, factor)
    if done.exists():
        return inp
    shutil.rmtree(data_dir, ignore_errors=True)
    if factor > 1:
        # The base is the one-copy input of the same days and rows per day, generated once.
        base = prepare(work, days, per_day * days, seed, max_base_events).data_dir
        _scale(base, data_dir, factor)
    else:
        cmd = [sys.executable, "-m", "ml_platform.demo", "generate", "--days", str(days)]
        cmd += ["--events-per-day", str(per_day), "--seed", str(seed), "--end-date", END_DATE.isoformat()]
        cmd += ["--data-dir", str(data_dir), "--telemetry-hours-per-day", "1"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    done.write_text(json.dumps({"days": days, "events": inp.events, "factor": factor, "seed": seed}) + "\n")
    return inp


def _scale(base: Path, target: Path, factor: int) -> None:
    """Copy the users snapshots as they are and every events file `factor` times."""
    shutil.copytree(base / "landing" / "users", target / "landing" / "users")
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = true")
    for path in sorted((base / "landing" / "events").glob("*/*.*")):
        folder = target / "landing" / "events" / path.parent.name
        folder.mkdir(parents=True, exist_ok=True)
        src = str(path).replace("'", "''")
        if path.suffix == ".csv":
            scan = f"read_csv('{src}', all_varchar = true, header = true)"
            options = "FORMAT csv, HEADER true"
        elif path.suffix == ".jsonl":
            scan = f"read_json('{src}', format = 'newline_delimited', records = true, columns = {_json_columns(path)})"
            options = "FORMAT json"
        else:
            scan = f"read_parquet('{src}')"
            options = "FORMAT parquet"
        for copy in range(1, factor + 1):
            out = folder / f"{path.stem}_c{copy:02d}{path.suffix}"
            suffix = "" if copy == 1 else f"-c{copy}"
            con.execute(
                f"COPY (SELECT * REPLACE (event_id || '{suffix}' AS event_id) FROM {scan}) "
                f"TO '{str(out).replace(chr(39), chr(39) * 2)}' ({options})"
            )
    con.close()


def _json_columns(path: Path) -> str:
    """Every key of the file's first record, read as text (the reader must not retype values)."""
    with path.open() as f:
        keys = list(json.loads(f.readline()))
    return "{" + ", ".join(f"'{k}': 'VARCHAR'" for k in keys) + "}"
