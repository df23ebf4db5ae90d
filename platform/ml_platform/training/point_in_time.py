"""Point-in-time feature retrieval: each entity row gets every feature as it was known at its timestamp.

For an entity row with keys K and timestamp t, and a feature table (keys, feature timestamp
`ts`, `created` time, features), the value returned is taken from the row r with:

1. the same keys (a NULL key matches nothing);
2. `r.ts <= t`: no feature from the future;
3. `r.created <= t`: no row *written* (made available) after t, even when its feature timestamp is
   earlier. Feast lets such rows leak (its issue 6615); here they never do;
4. among those, the greatest `ts`; ties on `ts` go to the greatest `created` (the latest correction
   that was already known at t);
5. then the TTL: when that row's `ts` is older than `t - ttl`, the features are NULL. An older row
   is never used instead, because a newer one existed.

Every entity row comes back, once, in input order, with NULL features where nothing qualifies.
Two rows with the same keys, `ts` and `created` cannot be told apart. They make the result
ambiguous, so the join refuses them, naming the table.

How it runs, set-based and in one pass per feature table: a row is usable at t exactly when its
*availability* `greatest(ts, created)` is <= t. Each key's rows are ordered by availability, and a
running `arg_max` over (ts, created), with a RANGE frame so equal availabilities agree, carries
the best row available so far. One DuckDB `ASOF JOIN` on availability then picks, for each
entity row, the last availability <= t, and with it the best usable row. That avoids DuckDB's
arbitrary choice among equal ASOF keys (its issue 25536).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import pandas as pd

from ml_platform.warehouse import sql

ENTITY_TIMESTAMP = "event_timestamp"
_ROW = "__entity_row"
_FRAMES = itertools.count()


@dataclass(frozen=True)
class FeatureTable:
    """Where one feature view's rows are and how to read them as of a time."""

    name: str  # the view's name: prefixes its features when full names are asked for
    table: str  # the warehouse table holding its rows
    entity_columns: tuple[str, ...]
    timestamp_column: str
    # When each row became available (written, or its inputs landed); None: at its timestamp.
    created_column: str | None = None
    ttl: dt.timedelta | None = None


class AmbiguousFeatureRows(ValueError):
    """A feature table holds rows that agree on keys, timestamp and created time."""


def point_in_time_join(
    con: duckdb.DuckDBPyConnection,
    entities: pd.DataFrame | str,
    features: Sequence[tuple[FeatureTable, Sequence[str]]],
    *,
    full_feature_names: bool = False,
    entity_timestamp: str = ENTITY_TIMESTAMP,
) -> duckdb.DuckDBPyRelation:
    """The entity rows (a DataFrame, or the name of a table in `con`) with each requested feature
    as of their `entity_timestamp`; features are named `feature`, or `view__feature` with
    `full_feature_names`. Returns a lazy relation: `.df()`, `.arrow()` or `.create(table)`."""
    entity_relation = _entities(con, entities)
    names: list[str] = []
    selects: list[str] = []
    joins: list[str] = []
    for i, (view, columns) in enumerate(features):
        _refuse_ambiguous_rows(con, view)
        best = f"__best_{i}"
        joins.append(_best_row_join(view, best, entity_timestamp))
        for column in columns:
            name = f"{view.name}__{column}" if full_feature_names else column
            names.append(name)
            selects.append(f"{best}.{sql.ident(column)} AS {sql.ident(name)}")
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"feature names {duplicated} appear in more than one view: ask for full_feature_names")
    query = f"""
        WITH __entities AS ({entity_relation})
        SELECT __entities.* EXCLUDE ({_ROW}){"".join(", " + s for s in selects)}
        FROM __entities
        {" ".join(joins)}
        ORDER BY __entities.{_ROW}
    """
    return con.sql(query)


def _entities(con: duckdb.DuckDBPyConnection, entities: pd.DataFrame | str) -> str:
    """SELECT of the entity rows with their input position."""
    if isinstance(entities, str):
        return f"SELECT *, rowid AS {_ROW} FROM {sql.ident(entities)}"
    frame = entities.reset_index(drop=True)
    frame = frame.assign(**{_ROW: range(len(frame))})
    # A fresh name per call: the returned relation is lazy and keeps reading this frame.
    name = f"__entities_{next(_FRAMES)}"
    con.register(name, frame)
    return f"SELECT * FROM {sql.ident(name)}"


def _refuse_ambiguous_rows(con: duckdb.DuckDBPyConnection, view: FeatureTable) -> None:
    keys = [*view.entity_columns, view.timestamp_column, *([view.created_column] if view.created_column else [])]
    duplicates = con.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM {sql.ident(view.table)} GROUP BY {sql.columns_list(keys)}"
        " HAVING count(*) > 1)"
    ).fetchone()[0]
    if duplicates:
        raise AmbiguousFeatureRows(
            f"{view.name}: {duplicates} group(s) of rows in {view.table} share {', '.join(keys)}; "
            "which one was known at a time cannot be told"
        )


def _best_row_join(view: FeatureTable, alias: str, entity_timestamp: str) -> str:
    """LEFT JOINs attaching, under `alias`, the best row of `view` usable at each entity's time."""
    keys = [sql.ident(k) for k in view.entity_columns]
    ts = sql.ident(view.timestamp_column)
    created = sql.ident(view.created_column) if view.created_column else ts
    t = f"CAST(__entities.{sql.ident(entity_timestamp)} AS TIMESTAMP)"
    key_match = " AND ".join(f"__entities.{k} = {alias}_avail.{k}" for k in keys)
    ttl = ""
    if view.ttl is not None:
        micros = int(view.ttl / dt.timedelta(microseconds=1))
        ttl = f" AND {alias}.{ts} >= {t} - to_microseconds({sql.literal(micros)})"
    return f"""
        ASOF LEFT JOIN (
            SELECT {", ".join(keys)}, greatest({ts}, {created}) AS __available,
                   arg_max(rowid, struct_pack(ts := {ts}, created := {created})) OVER (
                       PARTITION BY {", ".join(keys)} ORDER BY greatest({ts}, {created})
                       RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS __best_rowid
            FROM {sql.ident(view.table)} WHERE {ts} IS NOT NULL
        ) {alias}_avail ON {key_match} AND {t} >= {alias}_avail.__available
        LEFT JOIN {sql.ident(view.table)} {alias}
          ON {alias}.rowid = {alias}_avail.__best_rowid{ttl}"""
