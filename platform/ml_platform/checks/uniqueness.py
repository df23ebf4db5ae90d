"""The `uniqueness` check: a source's key names one row, within a day and across days.

The clean write deduplicates each day's rows by key, so a duplicate within a day means that
write is broken; a key on two days is what a producer re-sending an event with another event
time leaves behind, and no single day's write can see it. Both are counted set-based on the key
columns only: the written days' distinct keys joined with the rest of the table's (bounded by
the rule's `across_days`). Snapshot sources are judged on their history instead: one current
version per key, one version per key and `valid_from`.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb

from ml_platform.checks.verdicts import ERROR, PASS, verdict
from ml_platform.contracts.quality_rules import UniquenessRule
from ml_platform.partitions import window_keys
from ml_platform.results import Verdict
from ml_platform.warehouse import sql
from ml_platform.warehouse.sql import DateWindow

UNIQUENESS_CHECK = "uniqueness"
SAMPLE_KEYS = 5


def key_text(key_columns: tuple[str, ...], personal: frozenset[str] = frozenset()) -> str:
    """One text per key, for samples: the values joined by '|', personal ones masked."""
    parts = [f"CAST({sql.ident(c)} AS VARCHAR)" for c in key_columns]
    shown = [sql.masked(part) if c in personal else part for c, part in zip(key_columns, parts, strict=True)]
    return "concat_ws('|', " + ", ".join(shown) + ")"


def judge_uniqueness(
    con: duckdb.DuckDBPyConnection,
    rule: UniquenessRule,
    table: str,
    day_column: str,
    key_columns: tuple[str, ...],
    window: DateWindow,
    personal: frozenset[str] = frozenset(),
) -> dict[str, Verdict]:
    """One verdict per day of `window` (`personal`: key columns masked in samples)."""
    keys, day = sql.columns_list(key_columns), sql.ident(day_column)
    within = dict(
        (d, (rows, rows - distinct))
        for d, rows, distinct in con.execute(
            f"""SELECT strftime({day}, '%Y-%m-%d'), count(*), count(DISTINCT ({keys}))
                FROM {sql.ident(table)} WHERE {sql.in_window(day_column, window)} GROUP BY 1"""
        ).fetchall()
    )
    others_window, reach_filter = None, ""
    if rule.across_days is not None:
        # The other rows read: the window widened by the reach; each day then looks only its own reach.
        reach = dt.timedelta(days=rule.across_days)
        others_window = (window[0] - reach, window[1] + reach)
        reach_filter = f"AND abs(date_diff('day', w._day, o.{day})) <= {sql.literal(rule.across_days)}"
    # Keys of a written day found on another day (within reach of that day), with the other days.
    across = {
        d: (n, other_days, sample)
        for d, n, other_days, sample in con.execute(
            f"""
            WITH written AS (
              SELECT DISTINCT {day} AS _day, {keys} FROM {sql.ident(table)} WHERE {sql.in_window(day_column, window)}
            ),
            elsewhere AS (
              SELECT w._day, {key_text(key_columns, personal)} AS _key, o.{day} AS _other
              FROM written w JOIN (SELECT {day}, {keys} FROM {sql.ident(table)} WHERE {sql.in_window(day_column, others_window)}) o
                USING ({keys})
              WHERE o.{day} <> w._day {reach_filter}
            )
            SELECT strftime(_day, '%Y-%m-%d'), count(DISTINCT _key),
                   list_sort(list(DISTINCT strftime(_other, '%Y-%m-%d'))),
                   list_sort(list(DISTINCT _key))[1:{SAMPLE_KEYS}]
            FROM elsewhere GROUP BY 1"""
        ).fetchall()
    }
    verdicts = {}
    for partition in window_keys(window):
        rows, duplicates = within.get(partition, (0, 0))
        elsewhere, other_days, sample = across.get(partition, (0, [], []))
        problems = []
        if duplicates:
            problems.append(f"{duplicates} duplicate key(s) within the day")
        if elsewhere:
            problems.append(
                f"{elsewhere} key(s) also on {', '.join(other_days)} ({', '.join(sample)}"
                f"{', ...' if elsewhere > len(sample) else ''})"
            )
        metadata = {"rows": rows, "duplicates_within": duplicates, "keys_on_other_days": elsewhere}
        if sample:
            metadata["sample_keys"] = dg.MetadataValue.json(sample)
        text = f"{partition}: {'; '.join(problems)}" if problems else None
        verdicts[partition] = verdict(ERROR if problems else PASS, metadata, text)
    return verdicts


def judge_history_uniqueness(
    con: duckdb.DuckDBPyConnection, table: str, key_columns: tuple[str, ...], personal: frozenset[str] = frozenset()
) -> Verdict:
    """A snapshot source's history: one current version per key, one version per key and day
    (`personal`: key columns masked in samples)."""
    keys = sql.columns_list(key_columns)
    current, current_duplicates, version_duplicates, sample = con.execute(
        f"""
        WITH dup_current AS (
          SELECT {key_text(key_columns, personal)} AS _key FROM {sql.ident(table)} WHERE is_current
          GROUP BY {keys} HAVING count(*) > 1
        ),
        dup_versions AS (
          SELECT {key_text(key_columns, personal)} AS _key FROM {sql.ident(table)}
          GROUP BY {keys}, valid_from HAVING count(*) > 1
        )
        SELECT (SELECT count(*) FROM {sql.ident(table)} WHERE is_current),
               (SELECT count(*) FROM dup_current), (SELECT count(*) FROM dup_versions),
               (SELECT list_sort(list(DISTINCT _key))[1:{SAMPLE_KEYS}]
                FROM (SELECT _key FROM dup_current UNION ALL SELECT _key FROM dup_versions))"""
    ).fetchone()
    problems = []
    if current_duplicates:
        problems.append(f"{current_duplicates} key(s) with more than one current version")
    if version_duplicates:
        problems.append(f"{version_duplicates} key(s) with two versions starting the same day")
    metadata = {
        "current_rows": current,
        "keys_with_current_duplicates": current_duplicates,
        "keys_with_version_duplicates": version_duplicates,
    }
    if sample:
        metadata["sample_keys"] = dg.MetadataValue.json(sample)
    text = f"{table}: {'; '.join(problems)} ({', '.join(sample)})" if problems else None
    return verdict(ERROR if problems else PASS, metadata, text)
