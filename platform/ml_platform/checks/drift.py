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
rows are unpivoted to (day, feature, value) and each day is summarized once (`_psi_sql` says how),
so a range of days costs about what its rows cost, not 28 times that.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb

from ml_platform.checks.verdicts import ERROR, LEVEL_NAMES, PASS, WARN, verdict
from ml_platform.contracts.quality_rules import DriftRule
from ml_platform.partitions import window_keys
from ml_platform.results import Verdict
from ml_platform.warehouse import sql
from ml_platform.warehouse.sql import DateWindow

DRIFT_CHECK = "drift"
EMPTY_SHARE = 0.0001
# A day's summary: its values at these percentiles, each point a hundredth of the day.
PERCENTILES = [(i + 0.5) / 100 for i in range(100)]


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
    """Per (day, feature): values of the day, values of its reference, PSI.

    The reference is never materialized row by row (a range of D days would hold each row 28
    times): every day is summarized once, and each judged day's reference is the sum of its
    reference days' summaries. Text: each day's count per value. Numbers: each day's 100
    percentiles, each point standing for a hundredth of that day's values; the reference's point
    mass, deciles and bin shares are read from those weighted points, the judged day's shares from
    its own rows. A day's summary depends on that day's rows only, so a day gets the same verdict
    in a range backfill as in a run of its own."""
    reference = f"days.d - {sql.literal(rule.reference_days)} AND days.d - 1"
    days = f"""days AS (SELECT CAST(unnest(generate_series({sql.literal(window[0])}, {sql.literal(window[1])},
                                                  INTERVAL 1 DAY)) AS DATE) AS d)"""
    if numeric:
        counted = f"""
        sketch AS (SELECT _day, feature, count(*) AS n, quantile_disc(v, {sql.literal(PERCENTILES)}) AS pts
                   FROM long GROUP BY ALL),
        ref_values AS (
          SELECT d, feature, v, sum(w) AS w FROM (
            SELECT days.d, s.feature, unnest(s.pts) AS v, s.n / {sql.literal(len(PERCENTILES))} AS w
            FROM days JOIN sketch s ON s._day BETWEEN {reference}
          ) GROUP BY ALL
        ),
        -- The reference's most frequent value, a bin of its own when it holds a tenth or more.
        tops AS (
          SELECT d, feature, CASE WHEN max(w) >= 0.1 * sum(w) THEN arg_max(v, w) END AS point
          FROM ref_values GROUP BY ALL
        ),
        rest AS (
          SELECT r.d, r.feature, r.v,
                 sum(r.w) OVER (PARTITION BY r.d, r.feature ORDER BY r.v ROWS UNBOUNDED PRECEDING) AS cum,
                 sum(r.w) OVER (PARTITION BY r.d, r.feature) AS total
          FROM ref_values r JOIN tops t USING (d, feature) WHERE r.v IS DISTINCT FROM t.point
        ),
        -- Edges: the deciles of the other values; a value's bin is the number of edges below it.
        deciles AS (
          SELECT d, feature, [{", ".join(f"min(v) FILTER (WHERE cum >= {k / 10} * total)" for k in range(1, 10))}] AS q
          FROM rest GROUP BY ALL
        ),
        edges AS (
          SELECT t.d, t.feature, t.point, coalesce(q.q, []) AS q
          FROM tops t LEFT JOIN deciles q USING (d, feature)
        ),
        counts AS (
          SELECT d, feature, {_bin("v")} AS bin, sum(n_ref) AS n_ref, sum(n_day) AS n_day FROM (
            SELECT r.d, r.feature, r.v, e.point, e.q, r.w AS n_ref, 0 AS n_day
              FROM ref_values r JOIN edges e USING (d, feature)
            UNION ALL
            SELECT l._day, l.feature, l.v, e.point, e.q, 0, 1
              FROM long l JOIN edges e ON e.d = l._day AND e.feature = l.feature
          ) GROUP BY ALL
        )"""
    else:
        # Text features with more distinct values than `max_categories` (ids, free text) are not binned.
        counted = f"""
        daily AS (SELECT _day, feature, v, count(*) AS n FROM long GROUP BY ALL),
        ref_values AS (
          SELECT days.d, c.feature, c.v, sum(c.n) AS n FROM days JOIN daily c ON c._day BETWEEN {reference}
          GROUP BY ALL
        ),
        binned AS (
          SELECT d, feature FROM ref_values GROUP BY ALL HAVING count(*) <= {sql.literal(rule.max_categories)}
        ),
        counts AS (
          SELECT d, feature, v AS bin, sum(n_ref) AS n_ref, sum(n_day) AS n_day FROM (
            SELECT d, feature, v, n AS n_ref, 0 AS n_day FROM ref_values
            UNION ALL
            SELECT _day, feature, v, 0, n FROM daily
          ) SEMI JOIN binned USING (d, feature) GROUP BY ALL
        )"""
    return f"""
        WITH long AS (SELECT * FROM {long_rows}),
        {days},
        {counted},
        shares AS (
          SELECT d, feature, n_ref, n_day,
                 greatest(n_ref / sum(n_ref) OVER w, {EMPTY_SHARE}) AS p_ref,
                 greatest(n_day / nullif(sum(n_day) OVER w, 0), {EMPTY_SHARE}) AS p_day
          FROM counts WINDOW w AS (PARTITION BY d, feature)
        )
        SELECT strftime(d, '%Y-%m-%d'), feature, CAST(sum(n_day) AS BIGINT), CAST(round(sum(n_ref)) AS BIGINT),
               sum((p_day - p_ref) * ln(p_day / p_ref))
        FROM shares GROUP BY d, feature"""


def _bin(v: str) -> str:
    """A numeric value's bin: the point mass's own, or the number of decile edges below it."""
    return f"CASE WHEN {v} = point THEN 'point' ELSE CAST(len(list_filter(q, x -> x < {v})) AS VARCHAR) END"


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
