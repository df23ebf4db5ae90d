"""Shared writing helpers of the demo generator: atomic file writes, CSV bytes, exact counts."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterable
from pathlib import Path


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Write via a dot-prefixed temp file in the same folder, then rename over the target.

    Watchers ignore dot files and the rename is atomic, so no one ever reads half a file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_csv(path: Path, columns: list[str], rows: Iterable[Iterable]) -> None:
    """Write a header and rows as UTF-8 CSV with '\\n' line ends (None becomes empty), atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    write_bytes(path, buf.getvalue().encode("utf-8"))


def count(m: int, rate: float) -> int:
    """Exact number of defects of one kind among `m` rows (rounded half up)."""
    return int(m * rate + 0.5)
