"""Daily UTC partitions and the date window a run covers (one partition or a backfill range)."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from ml_platform import settings
from ml_platform.warehouse.sql import DateWindow, window_days


def daily_partitions() -> dg.DailyPartitionsDefinition:
    # end_offset=1 makes today's partition exist, so files landing today can be ingested today.
    return dg.DailyPartitionsDefinition(start_date=settings.partitions_start_date(), timezone="UTC", end_offset=1)


def run_window(context: dg.AssetExecutionContext) -> DateWindow:
    """The days this run writes; a single-run backfill covers its whole range at once."""
    window = context.partition_time_window
    return window.start.date(), (window.end - dt.timedelta(days=1)).date()


def window_keys(window: DateWindow) -> list[str]:
    """The partition key of every day of the window."""
    return [day.isoformat() for day in window_days(window)]


def window_label(window: DateWindow | None) -> str:
    if window is None:
        return "snapshot"
    return str(window[0]) if window[0] == window[1] else f"{window[0]}..{window[1]}"
