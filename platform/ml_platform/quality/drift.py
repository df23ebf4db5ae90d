"""The `drift` check: each feature's distribution on a day against the days before it (PSI).

A model trained on last month's features scores today's; when a feature's distribution moves,
the model sees inputs it was not fitted on, although every row is valid. The population
stability index compares a day's distribution with a reference, the `reference_days` before it:

    PSI = sum over bins of (day share - reference share) * ln(day share / reference share)

Numeric features are binned by the reference's deciles (so every reference bin holds about a
tenth), text features by their values. A value holding at least a tenth of the reference (the
zeros of a spend feature, most days) is a bin of its own and the deciles are taken over the other
values: otherwise a zero-inflated feature spends most edges on zero, and a spend that quadruples
stays in the same top bin. Empty bins get a share of 0.0001 so the logarithm stays
finite. The usual reading: below 0.1 stable, 0.1-0.25 a shift worth a look (WARN), above 0.25 a
different population (ERROR). Nulls are left to completeness.

All of it is one set-based query per kind of feature over the window and its reference days: the
rows are unpivoted to (day, feature, value), each day joined with its own reference days.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb

from ml_platform.partitions import window_keys
from ml_platform.quality.rules import DriftRule
from ml_platform.quality.verdicts import ERROR, LEVEL_NAMES, PASS, WARN, verdict
from ml_platform.results import Verdict
from ml_platform.warehouse import sql
from ml_platform.warehouse.sql import DateWindow

DRIFT_CHECK = "drift"
EMPTY_SHARE = 0.0001
DECILES = [i / 10 for i in range(1, 10)]


def _long_rows(
    table: str, day_column: str, columns: list[str], cast: str, window: DateWindow, rule: DriftRule, since: dt.date
) -> str:
    """(day, feature, value) of the window and its reference days from `since` on, nulls left out."""
    reach = (max(window[0] - dt.timedelta(days=rule.reference_days), since), window[1])
    casts = ", ".join(f"CAST({sql.ident(c)} AS {cast}) AS {sql.ident(c)}" for c in columns)
    return f"""(UNPIVOT (SELECT {sql.ident(day_column)} AS _day, {casts} FROM {sql.ident(table)}
                WHERE {sql.in_window(day_column, reach)})
             ON {sql.columns_list(columns)} INTO NAME feature VALUE v)"""


def _psi_sql(long_rows: str, window: DateWindow, rule: DriftRule, numeric: bool) -> str:
    """Per (day, feature): rows of the day, rows of its reference, PSI."""
    if numeric:
        # The reference's most frequent value, a bin of its own when it holds a tenth or more.
        # Edges: the deciles of the other values; a value's bin is the number of edges below it.
        edges = f"""
          WITH tally AS (SELECT d, feature, v, count(*) AS n FROM ref GROUP BY ALL),
          tops AS (
            SELECT d, feature, CASE WHEN max(n) >= 0.1 * sum(n) THEN arg_max(v, n) END AS point
            FROM tally GROUP BY ALL
          )
          SELECT r.d, r.feature, t.point,
                 coalesce(quantile_cont(r.v, {sql.literal(DECILES)}) FILTER (WHERE r.v IS DISTINCT FROM t.point), []) AS q
          FROM ref r JOIN tops t USING (d, feature) GROUP BY ALL"""
        bin_of = "CASE WHEN {v} = e.point THEN 'point' ELSE CAST(len(list_filter(e.q, x -> x < {v})) AS VARCHAR) END"
    else:
        # Text features with more distinct values than `max_categories` (ids, free text) are not binned.
        edges = (
            f"SELECT d, feature, NULL AS point, NULL AS q FROM ref GROUP BY ALL"
            f" HAVING count(DISTINCT v) <= {sql.literal(rule.max_categories)}"
        )
        bin_of = "{v}"
    return f"""
        WITH long AS (SELECT * FROM {long_rows}),
        days AS (SELECT CAST(unnest(generate_series({sql.literal(window[0])}, {sql.literal(window[1])},
                                                    INTERVAL 1 DAY)) AS DATE) AS d),
        ref AS (
          SELECT days.d, l.feature, l.v FROM days JOIN long l
            ON l._day BETWEEN days.d - {sql.literal(rule.reference_days)} AND days.d - 1
        ),
        edges AS ({edges}),
        binned AS (
          SELECT r.d, r.feature, {bin_of.format(v="r.v")} AS bin, 1 AS in_ref, 0 AS in_day
            FROM ref r JOIN edges e USING (d, feature)
          UNION ALL
          SELECT l._day, l.feature, {bin_of.format(v="l.v")}, 0, 1
            FROM long l JOIN edges e ON e.d = l._day AND e.feature = l.feature
        ),
        counts AS (SELECT d, feature, bin, sum(in_ref) AS n_ref, sum(in_day) AS n_day FROM binned GROUP BY ALL),
        shares AS (
          SELECT d, feature, n_ref, n_day,
                 greatest(n_ref / sum(n_ref) OVER w, {EMPTY_SHARE}) AS p_ref,
                 greatest(n_day / nullif(sum(n_day) OVER w, 0), {EMPTY_SHARE}) AS p_day
          FROM counts WINDOW w AS (PARTITION BY d, feature)
        )
        SELECT strftime(d, '%Y-%m-%d'), feature, CAST(sum(n_day) AS BIGINT), CAST(sum(n_ref) AS BIGINT),
               sum((p_day - p_ref) * ln(p_day / p_ref))
        FROM shares GROUP BY d, feature"""


def judge_drift(
    con: duckdb.DuckDBPyConnection,
    rule: DriftRule,
    table: str,
    day_column: str,
    numeric_columns: list[str],
    text_columns: list[str],
    window: DateWindow,
    warmup_days: int = 0,
) -> dict[str, Verdict]:
    """One verdict per day of `window`: every feature's PSI against its reference days.

    `warmup_days`: a table whose rows aggregate the N days before their own (a 30-day activity
    window) holds partial windows on its first N days; their values grow as the history fills up,
    which is not drift. Days before the table's first day + N are neither judged nor a reference."""
    first = con.execute(f"SELECT min({sql.ident(day_column)}) FROM {sql.ident(table)}").fetchone()[0]
    since = (first or window[0]) + dt.timedelta(days=warmup_days)
    figures: dict[str, dict[str, tuple[int, int, float]]] = {}
    for columns, cast, numeric in ((numeric_columns, "DOUBLE", True), (text_columns, "VARCHAR", False)):
        if not columns:
            continue
        query = _psi_sql(_long_rows(table, day_column, columns, cast, window, rule, since), window, rule, numeric)
        for day, feature, n_day, n_ref, psi in con.execute(query).fetchall():
            figures.setdefault(day, {})[feature] = (n_day, n_ref, psi)
    verdicts = {}
    for partition in window_keys(window):
        judged = {
            feature: (n_day, n_ref, psi)
            for feature, (n_day, n_ref, psi) in sorted(figures.get(partition, {}).items())
            if n_day >= rule.min_rows and n_ref >= rule.min_reference_rows
        }
        metadata: dict = {
            "features_judged": len(judged),
            "reference_days": rule.reference_days,
            "warming_up": dt.date.fromisoformat(partition) < since,
        }
        findings, level = [], PASS
        for feature, (_, _, psi) in judged.items():
            metadata[f"psi_{feature}"] = round(psi, 4)
            feature_level = ERROR if psi >= rule.error_psi else WARN if psi >= rule.warn_psi else PASS
            if feature_level != PASS:
                limit = rule.error_psi if feature_level == ERROR else rule.warn_psi
                findings.append(
                    {"feature": feature, "psi": round(psi, 4), "level": LEVEL_NAMES[feature_level], "limit": limit}
                )
                level = max(level, feature_level)
        metadata["max_psi"] = round(max((psi for _, _, psi in judged.values()), default=0.0), 4)
        if findings:
            metadata["findings"] = dg.MetadataValue.json(findings)
        text = None
        if findings:
            text = f"{partition}: " + "; ".join(
                f"{f['feature']} PSI {f['psi']:.2f} against the {rule.reference_days} days before"
                f" ({f['level']} from {f['limit']:g})"
                for f in findings
            )
        verdicts[partition] = verdict(level, metadata, text)
    return verdicts
