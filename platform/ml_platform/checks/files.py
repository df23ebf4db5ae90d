"""The raw `files` check of file sources: was every landed file read, in full, and accounted for?

Per landing day it counts the files by status (ledger and `quarantined_files`): read in full,
partly read (lines rejected), unreadable, refused (links), unsupported (a format the source does
not read), and unaccounted (rows read + rejected differ from the file's own count). It passes
when every file was read in full; WARN when some were not, since the readable ones are in and
the day goes on; ERROR when rows cannot be accounted for, or when more than the source's
`max_unreadable_file_share` of the day's files could not be read at all. Files outside any date
folder belong to no day: they turn the run's result WARN until they are moved. Lines decoded with
the source's fallback encoding were read, so they do not fail it; the result counts them and names
their files (`lines_decoded_with_fallback`, `decoded_with_fallback`).
"""

from __future__ import annotations

import dagster as dg
import duckdb

from ml_platform.dagster_previews import acknowledged
from ml_platform.partitions import window_keys
from ml_platform.raw.quarantine import (
    QUARANTINED_FILES_TABLE,
    REFUSED,
    UNSUPPORTED,
    create_quarantine_tables,
)
from ml_platform.raw.spec import SourceSpec
from ml_platform.raw.table import INGESTED, LEDGER_TABLE, PARTLY_READ, UNACCOUNTED, UNREADABLE, ledger_scope
from ml_platform.results import CheckOutcome, Verdict
from ml_platform.warehouse import sql
from ml_platform.warehouse.sql import DateWindow

FILES_CHECK = "files"
STATUSES = (INGESTED, PARTLY_READ, UNREADABLE, UNACCOUNTED, REFUSED, UNSUPPORTED)
# How many problem files a result names in its description (all are in its metadata).
NAMED_IN_WORDS = 3


def files_check_spec(asset_key: dg.AssetKey, max_unreadable_share: float, partitions_def) -> dg.AssetCheckSpec:
    with acknowledged("partitions_def on an AssetCheckSpec"):
        return dg.AssetCheckSpec(
            name=FILES_CHECK,
            asset=asset_key,
            partitions_def=partitions_def,
            description=(
                "Every landed file read in full and its rows accounted for; WARN for files quarantined or"
                f" partly read, ERROR above {max_unreadable_share:.0%} unreadable or for unaccounted rows."
            ),
        )


def _day_files(con: duckdb.DuckDBPyConnection, spec: SourceSpec, window: DateWindow) -> list[tuple]:
    """(landing_date, file, status, rows_rejected, reason, fallback_lines) of every file of the window."""
    create_quarantine_tables(con)
    return con.execute(
        f"""
        SELECT l.landing_date, l.source_file, l.status, l.rows_rejected, q.reason, l.fallback_lines
        FROM (SELECT * FROM {sql.ident(LEDGER_TABLE)} WHERE {ledger_scope(spec, window)}) l
        LEFT JOIN {sql.ident(QUARANTINED_FILES_TABLE)} q
          ON q.source = l.source AND q.landing_date = l.landing_date AND q.source_file = l.source_file
        UNION ALL
        SELECT landing_date, source_file, status, rows_rejected, reason, 0 FROM {sql.ident(QUARANTINED_FILES_TABLE)}
        WHERE source = {sql.literal(spec.name)} AND {sql.in_window("landing_date", window)}
          AND status IN ({sql.literal(REFUSED)}, {sql.literal(UNSUPPORTED)})
        ORDER BY 1, 2
        """
    ).fetchall()


def evaluate_files(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    window: DateWindow,
    misplaced: list[str],
    max_unreadable_share: float,
) -> CheckOutcome:
    files = _day_files(con, spec, window)
    by_day = {day: [f for f in files if f[0].isoformat() == day] for day in window_keys(window)}
    return CheckOutcome(
        FILES_CHECK,
        _verdict(files, misplaced, max_unreadable_share),
        {day: _verdict(day_files, [], max_unreadable_share) for day, day_files in by_day.items()},
    )


def _verdict(files: list[tuple], misplaced: list[str], max_unreadable_share: float) -> Verdict:
    counts = {status: sum(1 for f in files if f[2] == status) for status in STATUSES}
    attempted = sum(counts[s] for s in (INGESTED, PARTLY_READ, UNREADABLE, UNACCOUNTED))
    share = counts[UNREADABLE] / attempted if attempted else 0.0
    problems = [
        {"file": f[1], "status": f[2], "reason": f[4], "rows_rejected": f[3]} for f in files if f[2] != INGESTED
    ]
    problems += [
        {"file": path, "status": "misplaced", "reason": "not inside a date folder: never read"} for path in misplaced
    ]
    error = counts[UNACCOUNTED] > 0 or share > max_unreadable_share
    words = None
    if problems:
        named = "; ".join(f"{p['file']} ({p['status']}: {p['reason']})" for p in problems[:NAMED_IN_WORDS])
        more = f" and {len(problems) - NAMED_IN_WORDS} more" if len(problems) > NAMED_IN_WORDS else ""
        words = f"{len(problems)} of {len(files) + len(misplaced)} file(s) not read in full: {named}{more}"
    return Verdict(
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR if error else dg.AssetCheckSeverity.WARN,
        metadata={
            "files": len(files),
            **{f"files_{status}": count for status, count in counts.items()},
            "files_misplaced": len(misplaced),
            "rows_rejected": sum(f[3] or 0 for f in files),
            "lines_decoded_with_fallback": sum(f[5] or 0 for f in files),
            "decoded_with_fallback": dg.MetadataValue.json({f[1]: f[5] for f in files if f[5]}),
            "unreadable_share": float(round(share, 4)),
            "problems": dg.MetadataValue.json(problems),
        },
        description=words,
    )
