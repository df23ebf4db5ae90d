"""Timing of one lookup call, shared by the online lookup benchmark and its Feast worker.

Standard library only: it is imported in `.venv` (the platform's side) and in `.venv-bench`
(Feast's side, `feast_lookup_worker.py`), so both sides are timed and summarized the same way.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def percentiles(samples: list[float]) -> dict:
    """Median and 99th percentile of durations in seconds, in milliseconds."""
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 3),
        "n": len(ordered),
    }


def time_call(call: Callable[[], object], repeat: int, warmup: int) -> dict:
    """`warmup` untimed calls, then `repeat` timed ones, one after another."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


class Draws:
    """The entities of successive lookups, from one list, in the same order on both sides."""

    def __init__(self, ids: list[str]):
        self.ids = ids
        self.position = 0

    def one(self) -> str:
        self.position += 1
        return self.ids[self.position % len(self.ids)]

    def hundred(self) -> list[str]:
        self.position += 1
        start = self.position % (len(self.ids) - 100)
        return self.ids[start : start + 100]
