"""PLACEHOLDER until the online-store branch lands (replaced by it)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class OnlineRow:
    key: tuple[str, ...]
    ts: dt.datetime
    values: dict


def configured_store():
    return None
