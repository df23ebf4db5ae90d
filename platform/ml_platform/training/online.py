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


@dataclass(frozen=True)
class _Plan:
    """What a lookup of some features needs besides the ids, worked out once per feature list and
    set of views: names checked and grouped by view, output columns and their DuckDB types, the
    entity columns each view holds pseudonymized."""

    requested: dict[str, list[str]]
    names: list[str]  # `view:feature`, in output order
    columns: list[str]  # the DataFrame's column per name (`feature`, or `view__feature`)
    types: list[str]  # the DuckDB type per name
    hidden: dict[str, frozenset[str]]  # view -> its pseudonymized entity columns
    views: dict  # held: the plan is keyed by the views' identities


_PLANS: dict[tuple, _Plan] = {}
_PLANS_KEPT = 256


def _plan(features: Sequence[str], views: dict, full_feature_names: bool = False) -> _Plan:
    """The lookup's plan, from a bounded cache: a serving process asks for the same features again
    and again, and working them out was a fifth of a one-entity lookup. Keyed by the views'
    identities: a view is a frozen dataclass, so another view is another object."""
    key = (tuple(features), full_feature_names, tuple((name, id(view)) for name, view in views.items()))
    plan = _PLANS.get(key)
    if plan is None:
        requested = requested_features(features, views)
        asked = [(view, feature) for view, features_of in requested.items() for feature in features_of]
        plan = _Plan(
            requested=requested,
            names=[f"{view}:{feature}" for view, feature in asked],
            columns=[f"{view}__{feature}" if full_feature_names else feature for view, feature in asked],
            types=[_column_types(views[view].contract)[feature] for view, feature in asked],
            hidden={
                view: frozenset(privacy.pseudonymized(views[view].contract, views[view].entity_columns))
                for view in requested
            },
            views=views,
        )
        if len(_PLANS) >= _PLANS_KEPT:
            _PLANS.clear()
        _PLANS[key] = plan
    return plan


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
    return _vectors(store, entities, _plan(features, views), at)


def _vectors(
    store: RedisOnlineStore, entities: Mapping[str, Sequence], plan: _Plan, at: dt.datetime | None
) -> OnlineVectors:
    """`online_vectors` once its plan is made."""
    views = plan.views
    lengths = {len(values) for values in entities.values()}
    if len(lengths) > 1:
        raise ValueError(f"entity key columns differ in length: { {c: len(v) for c, v in entities.items()} }")
    count = lengths.pop() if lengths else 0
    pseudonyms: dict[object, str | None] = {}
    reads, positions = [], []
    for view_name, names in plan.requested.items():
        view = views[view_name]
        missing = [c for c in view.entity_columns if c not in entities]
        if missing:
            raise MissingEntityKeys(f"{view_name} is keyed by {list(view.entity_columns)}: no {missing} given")
        hidden = plan.hidden[view_name]
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
    names = plan.names
    vectors: list[dict[str, Value]] = [dict.fromkeys(names) for _ in range(count)]
    for request, rows, answers in zip(reads, positions, groups, strict=True):
        for row, answer in zip(rows, answers, strict=True):
            vector = vectors[row]
            for feature, value in answer.items():
                vector[f"{request.view}:{feature}"] = value
    return OnlineVectors(looked_up, list(names), vectors)


def get_online_features(
    con: duckdb.DuckDBPyConnection | None,
    entities: pd.DataFrame | Mapping[str, Sequence],
    features: Sequence[str],
    *,
    at: dt.datetime | None = None,
    views: dict | None = None,
    full_feature_names: bool = False,
    store: RedisOnlineStore | Literal["configured"] | None = CONFIGURED,
) -> pd.DataFrame:
    """One row per entity row (its key columns), in order, with each feature as known at `at`
    (default: now). Features older than their view's TTL are null: stale values are not served.

    `entities`: a DataFrame of key columns, or a mapping of key columns to equally long lists of
    ids (`{"user_id": ["u1"]}`: what a model server has, without building a frame for it; the
    answer is the same as for `pd.DataFrame` of it). `store` answers when there is one (default:
    the configured store, `ML_PLATFORM_REDIS_URL`; then `con` may be None and `at` defaults to
    Redis's clock); `store=None` reads the warehouse through `con`. The caller passes ids as it
    knows them (raw user ids): key columns the views hold pseudonymized are pseudonymized with the
    platform's key to look them up, and come back as they were passed."""
    store = configured_store() if store == CONFIGURED else store
    views = feature_views() if views is None else views
    if store is not None:
        return _from_store(store, _given_columns(entities), features, at, views, full_feature_names)
    if not isinstance(entities, pd.DataFrame):
        entities = pd.DataFrame({column: list(ids) for column, ids in entities.items()})
    rows = entities if _positional(entities.index) else entities.reset_index(drop=True)
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


def _given_columns(entities: pd.DataFrame | Mapping[str, Sequence]) -> dict[str, pd.api.extensions.ExtensionArray]:
    """The caller's key columns as arrays, positionally, as a DataFrame of them holds them: a
    mapping's lists of text ids directly (a frame for one id cost as much as the lookup's read)."""
    if isinstance(entities, pd.DataFrame):
        return {c: entities[c].array for c in entities.columns}
    lengths = {c: len(ids) for c, ids in entities.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"entity key columns differ in length: {lengths}")
    given = {}
    for column, ids in entities.items():
        ids = list(ids)
        text = all(i is None or isinstance(i, str) for i in ids) and any(i is not None for i in ids)
        given[column] = pd.array(ids, dtype=_TEXT) if text else pd.Series(ids).array
    return given


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


def _entity_column_as_duckdb_gives(column: pd.api.extensions.ExtensionArray) -> pd.api.extensions.ExtensionArray:
    """An entity column as DuckDB hands it back: text held as objects comes back as `str` (object
    when all null); other dtypes come back as they went in."""
    # A Series' object column is held as a NumPy-backed array whose dtype wraps NumPy's.
    if getattr(column.dtype, "numpy_dtype", column.dtype) != object or not all(
        isinstance(v, str) or v is None for v in column
    ):
        return column
    return column.astype(_TEXT) if not column.isna().all() else column


def _from_store(
    store: RedisOnlineStore,
    given: dict[str, pd.api.extensions.ExtensionArray],
    features: Sequence[str],
    at: dt.datetime | None,
    views: dict,
    full_feature_names: bool,
) -> pd.DataFrame:
    plan = _plan(features, views, full_feature_names)
    columns = plan.columns
    if len(set(columns)) < len(columns):
        duplicated = sorted({n for n in columns if columns.count(n) > 1})
        raise ValueError(f"feature names {duplicated} appear in more than one view: ask for full_feature_names")
    key_columns = {c for view in plan.requested for c in views[view].entity_columns if c in given}
    answer = _vectors(store, {c: given[c].tolist() for c in key_columns}, plan, at)
    # The caller's ids back for pseudonymized keys, as the warehouse path restores them.
    keys = {c for hidden in plan.hidden.values() for c in hidden}
    data = {c: column if c in keys else _entity_column_as_duckdb_gives(column) for c, column in given.items()}
    for name, column, duckdb_type in zip(plan.names, columns, plan.types, strict=True):
        data[column] = _column_as_duckdb_gives([vector[name] for vector in answer.vectors], duckdb_type)
    # The arrays are this call's own: no copy (a sixth of building the frame for one entity).
    return pd.DataFrame(data, copy=False)
