"""The contenders: each sets up untimed, then returns a `run()` that produces the training set.

Every `run()` returns a pandas DataFrame with the entity columns (`row_id`, `user_id`,
`event_timestamp`, `label`) and the features, as a caller would consume it. Each setup gets the
same generated inputs (`pit_data.Inputs`) and the TTL; what a contender does and does not honour
of the point-in-time semantics is said in its docstring.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
from pit_data import FEATURES, Inputs

Run = Callable[[], pd.DataFrame]


@dataclass(frozen=True)
class Prepared:
    """A contender ready to run, and any facts about its (untimed) setup worth reporting."""

    run: Run
    notes: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Contender:
    label: str
    setup: Callable[[Inputs, dt.timedelta, dict], Prepared]
    slow: bool = False  # repeated --slow-repeat times instead of --repeat
    semantics: str = ""


def load_entities(inputs: Inputs) -> pd.DataFrame:
    """The entity rows as a user hands them over: nanosecond, timezone-naive UTC timestamps."""
    frame = pd.read_parquet(inputs.entities_parquet)
    return frame.assign(event_timestamp=frame["event_timestamp"].astype("datetime64[ns]"))


def _warehouse(inputs: Inputs) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(inputs.database), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    return con


# --- the platform's API -------------------------------------------------------------------------


def setup_api(inputs: Inputs, ttl: dt.timedelta, options: dict) -> Prepared:
    """`point_in_time_join` on a feature view as the platform writes it: the writer keeps the
    view's frontier table (`refresh_frontier`, built here once on a copy of the warehouse; its
    build time is reported, not timed). Entity rows as a DataFrame, result as a DataFrame."""
    from ml_platform.point_in_time.frontier import refresh_frontier
    from ml_platform.point_in_time.join import FeatureTable, point_in_time_join

    database = options["work_dir"] / "warehouse_view.duckdb"
    shutil.copyfile(inputs.database, database)
    con = duckdb.connect(str(database))
    con.execute("SET TimeZone = 'UTC'")
    start = time.perf_counter()
    refresh_frontier(con, "features", ("user_id",), "ts", "created", None)
    notes = {"frontier_build_s": round(time.perf_counter() - start, 3)}
    entities = load_entities(inputs)
    view = FeatureTable("activity", "features", ("user_id",), "ts", "created", ttl=ttl)

    def run() -> pd.DataFrame:
        return point_in_time_join(con, entities, [(view, list(FEATURES))]).df()

    return Prepared(run, notes)


def setup_api_table(inputs: Inputs, ttl: dt.timedelta, options: dict) -> Prepared:
    """`point_in_time_join` on a table the platform did not write (no kept frontier: it is
    computed in the query)."""
    from ml_platform.point_in_time.join import FeatureTable, point_in_time_join

    con, entities = _warehouse(inputs), load_entities(inputs)
    view = FeatureTable("activity", "features", ("user_id",), "ts", "created", ttl=ttl)

    def run() -> pd.DataFrame:
        return point_in_time_join(con, entities, [(view, list(FEATURES))]).df()

    return Prepared(run)


# --- hand-written DuckDB ----------------------------------------------------------------------


def _ttl_guarded(alias: str, ttl: dt.timedelta) -> str:
    """Feature columns of `alias`, NULL when its row is older than the TTL at the entity's time."""
    seconds = int(ttl.total_seconds())
    guard = f"{alias}.ts >= e.event_timestamp - INTERVAL {seconds} SECOND"
    return ", ".join(f"CASE WHEN {guard} THEN {alias}.{c} END AS {c}" for c in FEATURES)


def setup_asof(inputs: Inputs, ttl: dt.timedelta, options: dict) -> Prepared:
    """One ASOF LEFT JOIN on ts, TTL applied to the row it finds, rows back in input order.
    Engine limit: ASOF takes one inequality, so rows created after the entity's time still match
    (a backfill leaks into the past), and among equal `ts` DuckDB picks any row (its issue 25536)."""
    con, entities = _warehouse(inputs), load_entities(inputs)
    query = f"""
        SELECT e.*, {_ttl_guarded("f", ttl)}
        FROM entities_frame e ASOF LEFT JOIN features f
          ON e.user_id = f.user_id AND e.event_timestamp >= f.ts
        ORDER BY e.row_id
    """

    def run() -> pd.DataFrame:
        con.register("entities_frame", entities)
        return con.sql(query).df()

    return Prepared(run)


def setup_reference(inputs: Inputs, ttl: dt.timedelta, options: dict) -> Prepared:
    """The full semantics spelled out plainly: join every usable row (ts and created <= t), keep
    the greatest (ts, created) per entity row, then the TTL. Correct by construction; its join
    grows with rows per key, which is why the platform does not do it this way."""
    con, entities = _warehouse(inputs), load_entities(inputs)
    query = f"""
        WITH best AS (
            SELECT e.row_id, f.*
            FROM entities_frame e JOIN features f
              ON e.user_id = f.user_id AND f.ts <= e.event_timestamp AND f.created <= e.event_timestamp
            QUALIFY row_number() OVER (PARTITION BY e.row_id ORDER BY f.ts DESC, f.created DESC) = 1
        )
        SELECT e.*, {_ttl_guarded("b", ttl)}
        FROM entities_frame e LEFT JOIN best b ON e.row_id = b.row_id
        ORDER BY e.row_id
    """

    def run() -> pd.DataFrame:
        con.register("entities_frame", entities)
        return con.sql(query).df()

    return Prepared(run)


# --- pandas -------------------------------------------------------------------------------------


def setup_pandas(inputs: Inputs, ttl: dt.timedelta, options: dict) -> Prepared:
    """`pd.merge_asof` by user, backward on ts, with the TTL as tolerance. Rows sorted by
    (ts, created), so among equal ts the latest created wins; but like any plain ASOF it cannot
    leave out rows created after the entity's time. Sorting both sides is part of the run."""
    entities = load_entities(inputs)
    features = pd.read_parquet(inputs.features_parquet)
    features = features.assign(
        ts=features["ts"].dt.tz_localize(None).astype("datetime64[ns]"),
        created=features["created"].dt.tz_localize(None).astype("datetime64[ns]"),
    )

    def run() -> pd.DataFrame:
        right = features.sort_values(["ts", "created"], kind="stable")[["user_id", "ts", *FEATURES]]
        left = entities.sort_values("event_timestamp", kind="stable")
        joined = pd.merge_asof(
            left, right, left_on="event_timestamp", right_on="ts", by="user_id", tolerance=pd.Timedelta(ttl)
        )
        return joined.drop(columns="ts").sort_values("row_id").reset_index(drop=True)

    return Prepared(run)


# --- Feast --------------------------------------------------------------------------------------


def _feast_store(inputs: Inputs, ttl: dt.timedelta, offline_store: str, repo: Path):
    """A local Feast repository with one feature view over the features Parquet file."""
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.repo_config import RepoConfig
    from feast.types import Float64, Int64, String

    repo.mkdir(parents=True, exist_ok=True)
    config = RepoConfig(
        project="pit_bench",
        provider="local",
        registry=str(repo / "registry.db"),
        offline_store={"type": offline_store},
        online_store={"type": "sqlite", "path": str(repo / "online.db")},
        repo_path=repo,
        entity_key_serialization_version=3,
    )
    store = FeatureStore(config=config)
    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
    source = FileSource(
        name="activity_source",
        path=str(inputs.features_parquet),
        timestamp_field="ts",
        created_timestamp_column="created",
    )
    types = {"amount": Float64, "clicks": Int64, "score": Float64, "segment": String}
    view = FeatureView(
        name="activity",
        entities=[user],
        ttl=ttl,
        schema=[Field(name=name, dtype=types[name]) for name in FEATURES],
        source=source,
        online=False,
    )
    store.apply([user, view])
    return store


def _setup_feast(offline_store: str) -> Callable[[Inputs, dt.timedelta, dict], Prepared]:
    def setup(inputs: Inputs, ttl: dt.timedelta, options: dict) -> Prepared:
        store = _feast_store(inputs, ttl, offline_store, options["work_dir"] / f"feast_{offline_store}")
        # Timezone-aware UTC entity timestamps: Feast's own convention, which spares its file
        # store a row-by-row conversion of naive ones (the best case for Feast).
        entities = load_entities(inputs)
        entities = entities.assign(event_timestamp=entities["event_timestamp"].dt.tz_localize("UTC"))
        refs = [f"activity:{name}" for name in FEATURES]
        created_filter = options["feast_created_filter"]

        def run() -> pd.DataFrame:
            job = store.get_historical_features(
                entity_df=entities, features=refs, filter_by_created_timestamp=created_filter
            )
            return job.to_df()

        return Prepared(run)

    return setup


FEAST_SEMANTICS = (
    "ts <= t, TTL as a lower bound, greatest (ts, created) kept; with filter_by_created_timestamp"
    " (on unless --no-feast-created-filter) rows created after t are blanked, else they leak"
)

CONTENDERS: dict[str, Contender] = {
    "api": Contender(
        "platform API on a feature view (frontier kept by the writer)",
        setup_api,
        semantics="full: ts <= t, created <= t, greatest (ts, created), TTL, every row once in input order",
    ),
    "api-table": Contender(
        "platform API on a table without a kept frontier",
        setup_api_table,
        semantics="full, the frontier computed in the query",
    ),
    "asof": Contender(
        "hand-written DuckDB ASOF LEFT JOIN",
        setup_asof,
        semantics="ts <= t, TTL; no created-time filter, arbitrary choice among equal ts",
    ),
    "reference": Contender(
        "hand-written full-semantics window query",
        setup_reference,
        semantics="full, by brute force (join all usable rows, keep the best)",
    ),
    "pandas": Contender(
        "pandas merge_asof",
        setup_pandas,
        semantics="ts <= t, TTL, latest created among equal ts; no created-time filter",
    ),
    "feast-duckdb": Contender(
        "Feast get_historical_features, duckdb offline store",
        _setup_feast("duckdb"),
        slow=True,
        semantics=FEAST_SEMANTICS,
    ),
    "feast-file": Contender(
        "Feast get_historical_features, file (dask) offline store",
        _setup_feast("file"),
        slow=True,
        semantics=FEAST_SEMANTICS,
    ),
}
