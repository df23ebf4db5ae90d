"""Latest values for serving: each entity's current feature vector, by the training definitions.

Two places answer, with the same names, rules and output:

- **The online store** (Redis, when `ML_PLATFORM_REDIS_URL` is set: `ml_platform.online_store`). The
  serving asset and the real-time transform keep each view's newest row per entity there; a lookup
  is one round trip, needs no warehouse (a model server keeps answering while a run holds the
  warehouse's lock) and applies the view's TTL at the lookup time. Caller ids are pseudonymized in
  Python with the platform's key (`privacy.pseudonym_of`, the same text DuckDB makes).
- **The warehouse** (the embedded default, and whenever a connection is passed with `store=None`):
  a training-set lookup whose entity rows are all "now": the same views, the same `view:feature`
  names, the same rules (nothing written after the time, the view's TTL).

Either way a model is served exactly the features it was trained on, computed the same way.
`online_vectors` is the store's answer as plain dicts (what the HTTP endpoint sends);
`get_online_features` returns a DataFrame shaped as the warehouse's answer, whichever answered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

import duckdb
import numpy as np
import pandas as pd

from ml_platform import privacy
from ml_platform.contracts import table_contract as tc
from ml_platform.online_store import RedisOnlineStore, Value, ViewRead, configured_store
from ml_platform.point_in_time.join import ENTITY_TIMESTAMP
from ml_platform.training.retrieval import feature_views, get_training_set, requested_features

CONFIGURED = "configured"


class MissingEntityKeys(ValueError):
    """A lookup lacks a key column one of the views asked for is keyed by."""


@dataclass(frozen=True)
class OnlineVectors:
    """An online store's answer: the lookup time (naive UTC), the `view:feature` names in output
    order, and per entity row a dict of them."""

    at: dt.datetime
    names: list[str]
    vectors: list[dict[str, Value]]


def online_vectors(
    store: RedisOnlineStore,
    entities: Mapping[str, Sequence],
    features: Sequence[str],
    *,
    at: dt.datetime | None = None,
    views: dict | None = None,
) -> OnlineVectors:
    """Each entity's features from the online store, in one round trip at one lookup time (Redis's
    clock, or `at`). `entities` maps key columns to equally long lists of ids as the caller knows
    them; a null id gets nulls. Names are checked as `get_training_set` checks them."""
    views = feature_views() if views is None else views
    return _vectors(store, entities, requested_features(features, views), at, views)


def _vectors(
    store: RedisOnlineStore,
    entities: Mapping[str, Sequence],
    requested: dict[str, list[str]],
    at: dt.datetime | None,
    views: dict,
) -> OnlineVectors:
    """`online_vectors` once the names are checked and grouped by view (`requested_features`)."""
    lengths = {len(values) for values in entities.values()}
    if len(lengths) > 1:
        raise ValueError(f"entity key columns differ in length: { {c: len(v) for c, v in entities.items()} }")
    count = lengths.pop() if lengths else 0
    pseudonyms: dict[object, str | None] = {}
    reads, positions = [], []
    for view_name, names in requested.items():
        view = views[view_name]
        missing = [c for c in view.entity_columns if c not in entities]
        if missing:
            raise MissingEntityKeys(f"{view_name} is keyed by {list(view.entity_columns)}: no {missing} given")
        hidden = set(privacy.pseudonymized(view.contract, view.entity_columns))
        keys, rows = [], []
        for row in range(count):
            parts = [entities[c][row] for c in view.entity_columns]
            if any(part is None or (isinstance(part, float) and part != part) or part is pd.NA for part in parts):
                continue
            key = []
            for column, part in zip(view.entity_columns, parts, strict=True):
                if column in hidden:
                    if part not in pseudonyms:
                        pseudonyms[part] = privacy.pseudonym_of(part)
                    key.append(pseudonyms[part])
                else:
                    key.append(str(part))
            keys.append(tuple(key))
            rows.append(row)
        reads.append(ViewRead(view_name, keys, names, view.ttl))
        positions.append(rows)
    looked_up, groups = store.read_views(reads, at=at)
    names = [f"{view}:{feature}" for view, features_of in requested.items() for feature in features_of]
    vectors: list[dict[str, Value]] = [dict.fromkeys(names) for _ in range(count)]
    for request, rows, answers in zip(reads, positions, groups, strict=True):
        for row, answer in zip(rows, answers, strict=True):
            vector = vectors[row]
            for feature, value in answer.items():
                vector[f"{request.view}:{feature}"] = value
    return OnlineVectors(looked_up, names, vectors)


def get_online_features(
    con: duckdb.DuckDBPyConnection | None,
    entities: pd.DataFrame,
    features: Sequence[str],
    *,
    at: dt.datetime | None = None,
    views: dict | None = None,
    full_feature_names: bool = False,
    store: RedisOnlineStore | Literal["configured"] | None = CONFIGURED,
) -> pd.DataFrame:
    """One row per entity row (its key columns), in order, with each feature as known at `at`
    (default: now). Features older than their view's TTL are null: stale values are not served.

    `store` answers when there is one (default: the configured store, `ML_PLATFORM_REDIS_URL`;
    then `con` may be None and `at` defaults to Redis's clock); `store=None` reads the warehouse
    through `con`. The caller passes ids as it knows them (raw user ids): key columns the views
    hold pseudonymized are pseudonymized with the platform's key to look them up, and come back as
    they were passed."""
    store = configured_store() if store == CONFIGURED else store
    views = feature_views() if views is None else views
    rows = entities if _positional(entities.index) else entities.reset_index(drop=True)
    if store is not None:
        return _from_store(store, rows, features, at, views, full_feature_names)
    if con is None:
        raise ValueError("no online store is configured (ML_PLATFORM_REDIS_URL): pass a warehouse connection")
    at = at or dt.datetime.now(dt.UTC)
    moment = at.astimezone(dt.UTC).replace(tzinfo=None) if at.tzinfo else at
    rows = rows.assign(**{ENTITY_TIMESTAMP: pd.Timestamp(moment)})
    keys = _pseudonymized_keys(rows, features, views)
    lookup = privacy.pseudonymize(con, rows, keys)
    served = get_training_set(con, lookup, features, views=views, full_feature_names=full_feature_names).df()
    served[keys] = rows[keys]  # in input order both: the caller's ids back
    return served.drop(columns=[ENTITY_TIMESTAMP])


def _pseudonymized_keys(rows: pd.DataFrame, features: Sequence[str], views: dict) -> list[str]:
    asked = [views[v] for v in dict.fromkeys(name.partition(":")[0] for name in features) if v in views]
    pseudonymized = {c for view in asked for c in privacy.pseudonymized(view.contract, view.entity_columns)}
    return [c for c in rows.columns if c in pseudonymized]


# The pandas dtypes DuckDB's `.df()` gives a column of each type, so the store's DataFrame equals the
# warehouse's (checked by test_online_serving): integers and booleans become pandas' nullable
# dtypes only when a null is present, text is `str` unless every value is null. Built directly:
# going through an in-memory DuckDB took 6 ms per lookup, more than the lookup itself.
# Dtype objects, not names: resolving a name costs more than building a one-entity column.
_INTEGERS = {"BIGINT": ("int64", pd.Int64Dtype()), "INTEGER": ("int32", pd.Int32Dtype())}
_BOOLEAN = pd.BooleanDtype()
_TEXT = pd.StringDtype(na_value=np.nan)  # pandas' "str"


def _positional(index: pd.Index) -> bool:
    """Whether the rows are already numbered 0..n-1 (no reset needed)."""
    return isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1


@cache
def _column_types(contract) -> dict[str, str]:
    return {c.name: c.duckdb_type for c in tc.columns(contract)}


def _column_as_duckdb_gives(values: list, duckdb_type: str):
    """An array of `values` (None for null) with the dtype DuckDB gives a column of `duckdb_type`."""
    has_null = any(v is None for v in values)
    if duckdb_type == "DOUBLE":
        return np.array([np.nan if v is None else v for v in values], dtype="float64")
    if duckdb_type in _INTEGERS:
        return (
            pd.array(values, dtype=_INTEGERS[duckdb_type][1])
            if has_null
            else np.array(values, dtype=_INTEGERS[duckdb_type][0])
        )
    if duckdb_type == "BOOLEAN":
        return pd.array(values, dtype=_BOOLEAN) if has_null else np.array(values, dtype=bool)
    if duckdb_type == "VARCHAR":
        if len(values) and not all(v is None for v in values):
            return pd.array(values, dtype=_TEXT)
        return np.array(values, dtype=object)
    raise ValueError(f"no online value of type {duckdb_type}")


def _entity_column_as_duckdb_gives(column: pd.Series) -> pd.Series:
    """An entity column as DuckDB hands it back: text held as objects comes back as `str` (object
    when all null); other dtypes come back as they went in."""
    if column.dtype != object or not all(isinstance(v, str) or v is None for v in column):
        return column
    return column.astype(_TEXT) if column.notna().any() else column


def _from_store(
    store: RedisOnlineStore,
    rows: pd.DataFrame,
    features: Sequence[str],
    at: dt.datetime | None,
    views: dict,
    full_feature_names: bool,
) -> pd.DataFrame:
    requested = requested_features(features, views)
    asked = [(view, feature) for view, features_of in requested.items() for feature in features_of]
    columns = [f"{view}__{feature}" if full_feature_names else feature for view, feature in asked]
    duplicated = sorted({n for n in columns if columns.count(n) > 1})
    if duplicated:
        raise ValueError(f"feature names {duplicated} appear in more than one view: ask for full_feature_names")
    present = set(rows.columns)
    key_columns = {c for view in requested for c in views[view].entity_columns if c in present}
    given = {c: rows[c] for c in rows.columns}
    answer = _vectors(store, {c: given[c].tolist() for c in key_columns}, requested, at, views)
    types = {view: _column_types(views[view].contract) for view in requested}
    # The caller's ids back for pseudonymized keys, as the warehouse path restores them.
    keys = set(_pseudonymized_keys(rows, features, views))
    data = {c: (column if c in keys else _entity_column_as_duckdb_gives(column)).array for c, column in given.items()}
    for (view, feature), column in zip(asked, columns, strict=True):
        values = [vector[f"{view}:{feature}"] for vector in answer.vectors]
        data[column] = _column_as_duckdb_gives(values, types[view][feature])
    # The arrays are this call's own: no copy (a sixth of building the frame for one entity).
    return pd.DataFrame(data, index=rows.index, copy=False)
