"""The raw `messages` check of stream sources: was every offset read, and every message usable?

Per landing day it reads what the day's runs recorded (`raw.stream`'s `stream_batches`, and
`rejected_messages`): ERROR when offsets were deleted by retention before they were read, naming
how many per partition (they are lost: no run can read them); WARN when messages were rejected
(not JSON, not an object, too large, no readable event time), with the count per reason; passed
otherwise. Never blocking: raw keeps what it could read, and the rejected messages are recorded.
"""

from __future__ import annotations

import collections

import dagster as dg
import duckdb

from ml_platform.dagster_previews import acknowledged
from ml_platform.partitions import window_keys
from ml_platform.raw import stream
from ml_platform.raw.quarantine import REJECTED_MESSAGES_TABLE, create_rejected_messages_table
from ml_platform.raw.spec import SourceSpec
from ml_platform.results import CheckOutcome, Verdict
from ml_platform.warehouse import sql
from ml_platform.warehouse.sql import DateWindow

MESSAGES_CHECK = "messages"


def messages_check_spec(asset_key: dg.AssetKey, partitions_def) -> dg.AssetCheckSpec:
    with acknowledged("partitions_def on an AssetCheckSpec"):
        return dg.AssetCheckSpec(
            name=MESSAGES_CHECK,
            asset=asset_key,
            partitions_def=partitions_def,
            description=(
                "Every offset of the topic read exactly once: ERROR naming the offsets lost to retention before they"
                " were read, per partition; WARN for messages rejected (recorded in rejected_messages)."
            ),
        )


def evaluate_messages(con: duckdb.DuckDBPyConnection, spec: SourceSpec, window: DateWindow) -> CheckOutcome:
    batches = stream.batch_figures(con, spec, window)
    create_rejected_messages_table(con)
    reasons = con.execute(
        f"""SELECT landing_date, reason, count(*) FROM {sql.ident(REJECTED_MESSAGES_TABLE)}
            WHERE source = {sql.literal(spec.name)} AND {sql.in_window("landing_date", window)}
            GROUP BY ALL ORDER BY 1, 2"""
    ).fetchall()
    by_day = {
        day: _verdict([b for b in batches if b[0].isoformat() == day], [r for r in reasons if r[0].isoformat() == day])
        for day in window_keys(window)
    }
    return CheckOutcome(MESSAGES_CHECK, _verdict(batches, reasons), by_day)


def _verdict(batches: list[tuple], reasons: list[tuple]) -> Verdict:
    lost: dict[str, int] = collections.Counter()
    lost_ranges = []
    read = 0
    for _, topic, partition, status, first, end, messages, _ in batches:
        if status == stream.LOST:
            lost[f"{topic}/{partition}"] += end - first
            lost_ranges.append({"partition": f"{topic}/{partition}", "first_offset": first, "last_offset": end - 1})
        else:
            read += messages
    rejected: dict[str, int] = collections.Counter()
    for _, reason, count in reasons:
        # "event time unreadable (t): <value>" counts under its kind, not each value.
        rejected[reason.split(": ")[0] if reason.startswith("event time unreadable") else reason] += count
    problems = []
    if lost:
        per_partition = ", ".join(f"{n} in partition {p}" for p, n in sorted(lost.items()))
        problems.append(
            f"{sum(lost.values())} offset(s) deleted by retention before they were read ({per_partition}): lost"
        )
    if rejected:
        kinds = ", ".join(f"{reason}: {n}" for reason, n in sorted(rejected.items()))
        problems.append(f"{sum(rejected.values())} message(s) rejected ({kinds}); see {REJECTED_MESSAGES_TABLE}")
    return Verdict(
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR if lost else dg.AssetCheckSeverity.WARN,
        metadata={
            "messages_read": read,
            "messages_rejected": sum(rejected.values()),
            "offsets_lost": sum(lost.values()),
            "lost_by_partition": dg.MetadataValue.json(dict(sorted(lost.items()))),
            "lost_ranges": dg.MetadataValue.json(lost_ranges),
            "rejected_by_reason": dg.MetadataValue.json(dict(sorted(rejected.items()))),
        },
        description="; ".join(problems) or None,
    )
