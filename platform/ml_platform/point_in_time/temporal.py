"""Temporal accuracy: windowed features computed as of each entity row's exact timestamp.

A feature view serves *snapshot* accuracy from its daily rows: a feature as of the last midnight
before the entity's time (`point_in_time`). A view may also declare *temporal* versions of its
windowed features (Chronon's two accuracies): a `TemporalFeature` names the source table, its
event time, the column saying when each source row became available, an aggregate SQL expression
and a window. For an entity row with keys K and timestamp t, its value aggregates the source rows
with:

1. the same keys (the view's entity columns, named alike in the source; a NULL key matches nothing);
2. a timestamp in `[t - window, t)`: the window's start is included, t itself is not (an event at
   t is the entity's own moment, as the snapshot's midnight excludes that day);
3. availability `available <= t`: no row that reached the platform after t, even when it happened
   before t.

An entity row with keys but no such source rows gets the aggregate's *empty value*: the aggregate
evaluated over no rows (`count(*)` gives 0, `coalesce(sum(x), 0.0)` gives 0.0, a bare `sum(x)`
gives NULL), so a declaration spells its empty value the way the snapshot view's SQL does. An
entity row with a NULL key or a NULL timestamp has no window to speak of: its features are NULL,
as with snapshot accuracy. Every entity row comes back, once, in input order.

How it runs, set-based: per (source table, timestamp, availability, window) one range join of the
entity rows with the source, on equal keys plus the window and availability predicates, grouped
per entity row, computes all of that window's aggregates at once; a LEFT JOIN on the entity row's
position attaches them. The aggregate is arbitrary SQL (counts, sums, distinct counts), which
cumulative sums + ASOF joins cannot serve: they work for sums and counts only, and need two
orderings per window to keep availability exact (see `temporal_join`). Measured on 2 shared cores
at 100k entity rows x 1M events over 90 days, spend and events over 7 and 30 days: with 10k users
(100 events each, the point-in-time benchmark's shape) the range join takes 0.35-0.95 s, the
cumulative sums 1.1-2.4 s; with 1k users (1,000 events each) the range join does more work per
entity row, 4-5.6 s against 1.2-1.7 s. The distinct session count adds 0.4-0.8 s (10k users).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import pandas as pd

from ml_platform import privacy
from ml_platform.point_in_time.join import ENTITY_ROW, ENTITY_TIMESTAMP, entity_rows, with_features
from ml_platform.warehouse import sql


@dataclass(frozen=True)
class TemporalFeature:
    """How one feature is computed as of an exact time from its source rows."""

    name: str  # the view's feature it is the temporal version of
    source_table: str  # a warehouse table with the view's entity columns, e.g. clean_events
    timestamp_column: str  # when each source row happened: windows select on it
    # When each source row became available to the platform: rows available after the entity's
    # time never count. For clean tables: `ingested_at` (see `ml_platform.contracts.lineage`).
    available_column: str
    # A SQL aggregate over the source's columns, e.g. "count(*)" or
    # "coalesce(sum(amount) FILTER (WHERE event_type = 'purchase'), 0.0)".
    aggregate: str
    window: dt.timedelta

    def __post_init__(self):
        if self.window <= dt.timedelta(0):
            raise ValueError(f"temporal feature {self.name}: its window must be positive, not {self.window}")
        if not self.aggregate.strip():
            raise ValueError(f"temporal feature {self.name}: its aggregate is empty")


@dataclass(frozen=True)
class TemporalView:
    """One feature view's temporal features, with the entity columns they are keyed by."""

    name: str  # the view's name: prefixes its features when full names are asked for
    entity_columns: tuple[str, ...]
    features: tuple[TemporalFeature, ...]
    # Entity columns the view holds pseudonymized (`ml_platform.privacy`): entity rows carry the
    # pseudonyms, the source (a clean table) the raw ids, matched through their pseudonyms.
    pseudonymized: tuple[str, ...] = ()

    def feature(self, name: str) -> TemporalFeature:
        """The declaration of feature `name`; KeyError when the view has none."""
        return {f.name: f for f in self.features}[name]


def temporal_join(
    con: duckdb.DuckDBPyConnection,
    entities: pd.DataFrame | str,
    features: Sequence[tuple[TemporalView, Sequence[str]]],
    *,
    full_feature_names: bool = False,
    entity_timestamp: str = ENTITY_TIMESTAMP,
) -> duckdb.DuckDBPyRelation:
    """The entity rows (a DataFrame, or the name of a table in `con`) with each requested temporal
    feature as of their exact `entity_timestamp`; features are named `feature`, or `view__feature`
    with `full_feature_names`. Raises ValueError for a feature the view declares no temporal
    version of. Returns a lazy relation: `.df()`, `.arrow()` or `.create(table)`.

    Measured alternative (not used): with cumulative sums, the rows counted at t are those with
    greatest(ts + 1us, available) <= t minus those with greatest(ts + window + 1us, available) <= t,
    two 1-D orderings and ASOF joins per window, exact for availability. Only sums and counts
    decompose so; the range join serves any aggregate.
    """
    missing = {view.name: [n for n in names if n not in {f.name for f in view.features}] for view, names in features}
    if any(missing.values()):
        undeclared = [f"{view}:{name}" for view, names in missing.items() for name in names]
        declared = {view.name: [f.name for f in view.features] for view, _ in features if missing[view.name]}
        raise ValueError(f"no temporal declaration for {undeclared}; the views' temporal features: {declared}")
    requested = [(view, [view.feature(name) for name in names]) for view, names in features]
    entity_relation = entity_rows(con, entities)
    names: list[str] = []
    selects: list[str] = []
    joins: list[str] = []
    for v, (view, declared) in enumerate(requested):
        known = " AND ".join(f"__entities.{sql.ident(c)} IS NOT NULL" for c in (*view.entity_columns, entity_timestamp))
        alias_of = {}
        for g, group in enumerate(_windows(declared)):
            alias = f"__window_{v}_{g}"
            joins.append(_window_join(con, view, group, alias, entity_timestamp))
            alias_of |= {feature.name: alias for feature in group}
        for feature in declared:  # as asked, whichever join computes it
            alias = alias_of[feature.name]
            name = f"{view.name}__{feature.name}" if full_feature_names else feature.name
            names.append(name)
            column = sql.ident(feature.name)
            # A matched entity row has its aggregate; an unmatched one with keys and time the
            # aggregate's empty value; one without has no window at all.
            selects.append(
                f"CASE WHEN NOT ({known}) THEN NULL WHEN {alias}.{ENTITY_ROW} IS NOT NULL THEN {alias}.{column}"
                f" ELSE {alias}_empty.{column} END AS {sql.ident(name)}"
            )
    return with_features(con, entity_relation, names, selects, joins)


def _windows(features: Sequence[TemporalFeature]) -> list[list[TemporalFeature]]:
    """Requested features grouped by what their join depends on, each group computed in one join
    (spend_7d and events_7d share a window); a feature asked for twice is computed once."""
    groups: dict[tuple, list[TemporalFeature]] = {}
    for feature in features:
        key = (feature.source_table, feature.timestamp_column, feature.available_column, feature.window)
        group = groups.setdefault(key, [])
        if feature not in group:
            group.append(feature)
    return list(groups.values())


def _window_join(
    con: duckdb.DuckDBPyConnection,
    view: TemporalView,
    group: Sequence[TemporalFeature],
    alias: str,
    entity_timestamp: str,
) -> str:
    """LEFT JOIN attaching, under `alias`, one window's aggregates per entity row that has source
    rows in it, and CROSS JOIN attaching, under `alias_empty`, the aggregates over no rows."""
    first = group[0]
    source = sql.ident(first.source_table)
    ts = f"__source.{sql.ident(first.timestamp_column)}"
    available = f"__source.{sql.ident(first.available_column)}"
    micros = int(first.window / dt.timedelta(microseconds=1))
    # The entity side keeps only its position, keys (renamed) and time, so the aggregates' column
    # names (amount, event_type, even user_id) can only mean the source's.
    keys = [f"__key_{i}" for i in range(len(view.entity_columns))]
    entity_keys = ", ".join(f"__entities.{sql.ident(c)} AS {k}" for c, k in zip(view.entity_columns, keys, strict=True))
    key_match = " AND ".join(
        f"__source.{sql.ident(c)} = __at.{k}" for c, k in zip(view.entity_columns, keys, strict=True)
    )
    aggregates = ", ".join(f"{f.aggregate} AS {sql.ident(f.name)}" for f in group)
    at = f"SELECT {ENTITY_ROW}, {entity_keys}, CAST(__entities.{sql.ident(entity_timestamp)} AS TIMESTAMP) AS __t FROM __entities"
    # A pseudonymized key is turned back into the source's raw id through the pseudonyms of the
    # source's distinct ids: hashing each id once, not each source row (an entity row without a
    # match has no source rows anyway).
    for column, key in zip(view.entity_columns, keys, strict=True):
        if column in view.pseudonymized:
            ids = privacy.pseudonym_map(con, first.source_table, column)
            at = f"SELECT __e.* REPLACE (__ids.__raw AS {key}) FROM ({at}) __e JOIN ({ids}) __ids ON __ids.__pseudonym = __e.{key}"
    return f"""
        LEFT JOIN (
            SELECT __at.{ENTITY_ROW}, {aggregates}
            FROM ({at}) __at
            JOIN {source} __source
              ON {key_match}
             AND {ts} >= __at.__t - to_microseconds({sql.literal(micros)}) AND {ts} < __at.__t
             AND {available} <= __at.__t
            GROUP BY __at.{ENTITY_ROW}
        ) {alias} ON {alias}.{ENTITY_ROW} = __entities.{ENTITY_ROW}
        CROSS JOIN (SELECT {aggregates} FROM {source} __source WHERE false) {alias}_empty"""
