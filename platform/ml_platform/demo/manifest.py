"""What a generated demo says about itself (`<data>/demo_manifest.json`), for the processes around it.

    python -m ml_platform.demo.manifest first-day [DATA_DIR]

prints the demo's first landing day (nothing when the folder holds no demo): `make dev` starts the
daily partitions there (`ML_PLATFORM_START_DATE`) instead of at the default 2026-01-01, so the UI
shows the demo's days, not a year of empty partitions. Late events of the days before it (the
demo's first files carry some, up to the events' 3-day tolerance) then belong to no partition: the
clean runs count them as owned by other days.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

MANIFEST = "demo_manifest.json"


def read_manifest(data_dir: Path) -> dict | None:
    """The manifest `generate` wrote into `data_dir`, or None when there is none."""
    path = Path(data_dir) / MANIFEST
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def first_day(manifest: dict) -> dt.date:
    """The demo's first landing day: its first partition."""
    return dt.date.fromisoformat(manifest["start_date"])


def last_day(manifest: dict) -> dt.date:
    """The demo's last landing day."""
    return dt.date.fromisoformat(manifest["end_date"])


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "first-day" or len(args) > 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    data_dir = Path(args[1] if len(args) == 2 else os.environ.get("ML_PLATFORM_DATA_DIR", "data"))
    manifest = read_manifest(data_dir)
    if manifest is not None:
        print(first_day(manifest).isoformat())
    return 0


if __name__ == "__main__":
    sys.exit(main())
