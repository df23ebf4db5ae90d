"""Snapshot and temporal accuracy of `get_training_set`: against plain-Python references of their
specs on random data, at the edges by hand, and on pipeline data (user_activity at 14:05).

The temporal reference is written from the module docstring of `ml_platform.point_in_time.temporal`
only: for an entity row with keys K (none NULL) and time t (not NULL), a feature aggregates the
source rows with keys K, `t - window <= ts < t` and `available <= t`; without such rows it is the
aggregate over no rows; with a NULL key or time it is NULL. The snapshot reference is the spec of
`ml_platform.point_in_time.join`: the usable row (same keys, ts <= t, created <= t) with the
greatest (ts, created), blanked when older than the TTL.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import ibis.expr.datatypes as ibis_dt
import pandas as pd
import pytest
from pandera.ibis import DataFrameModel, Field

from conftest import write_landing
from helpers import connect, create_table, entity_frame, pseudonym
from ml_platform.contracts.lineage import UtcTimestamp
from ml_platform.curated import FeatureView
from ml_platform.privacy import pseudonymize
from ml_platform.training import TemporalFeature, TemporalView, get_training_set, temporal_join
from ml_platform.warehouse import connect as connect_warehouse

T0 = dt.datetime(2026, 3, 1)
MICRO = dt.timedelta(microseconds=1)


def h(hours: float) -> dt.datetime:
    """A time on the test grid: T0 plus some hours."""
    return T0 + dt.timedelta(hours=hours)


# --- a view to declare random features on ----------------------------------------------------


class Scores(DataFrameModel):
    """A feature view's contract: keys, times and four feature columns."""

    user_id: ibis_dt.String = Field(nullable=True, description="Key.")
    region: ibis_dt.String = Field(nullable=True, description="Second key (or a feature).")
    day: ibis_dt.Date = Field(description="Partition.")
    ts: UtcTimestamp = Field(description="Feature timestamp.")
    created: UtcTimestamp = Field(description="When the row was written.")
    f1: ibis_dt.Int64 = Field(nullable=True, description="Feature.")
    f2: ibis_dt.Int64 = Field(nullable=True, description="Feature.")
    f3: ibis_dt.Float64 = Field(nullable=True, description="Feature.")
    f4: ibis_dt.String = Field(nullable=True, description="Feature.")

    class Config:
        strict = True


FEATURES = ("f1", "f2", "f3", "f4")
SNAPSHOT_TYPES = {"f1": "BIGINT", "f2": "BIGINT", "f3": "DOUBLE", "f4": "VARCHAR"}
SOURCE_TYPES = {
    "user_id": "VARCHAR",
    "region": "VARCHAR",
    "ts": "TIMESTAMP",
    "avail": "TIMESTAMP",
    "kind": "VARCHAR",
    "amount": "BIGINT",
    "price": "DOUBLE",
    "label": "VARCHAR",
}


def view(name: str, keys: tuple[str, ...], temporal=(), ttl: dt.timedelta | None = None) -> FeatureView:
    return FeatureView(
        name=name,
        description="Random scores.",
        contract=Scores,
        partition_column="day",
        sql="SELECT * FROM somewhere WHERE day BETWEEN $start AND $end",
        reads=("somewhere",),  # never run here: what its SQL would read
        entity_columns=keys,
        timestamp_column="ts",
        created_column="created",
        ttl=ttl,
        temporal=tuple(temporal),
    )


def _some(rows, column):
    return [r[column] for r in rows if r[column] is not None]


# SQL aggregate -> the same over a list of source rows in Python. Amounts are integers and prices
# quarters, so sums are exact in both.
AGGREGATES: dict[str, Callable[[list[dict]], object]] = {
    "count(*)": len,
    "count(amount)": lambda rows: len(_some(rows, "amount")),
    "coalesce(sum(amount) FILTER (WHERE kind = 'buy'), 0)": lambda rows: sum(
        _some([r for r in rows if r["kind"] == "buy"], "amount")
    ),
    "sum(amount)": lambda rows: sum(_some(rows, "amount")) if _some(rows, "amount") else None,
    "coalesce(sum(price), 0.0)": lambda rows: float(sum(_some(rows, "price"))),
    "max(amount)": lambda rows: max(_some(rows, "amount"), default=None),
    "count(DISTINCT label)": lambda rows: len(set(_some(rows, "label"))),
}


# --- references ------------------------------------------------------------------------------


def reference_temporal(entity: dict, keys: tuple[str, ...], feature: TemporalFeature, sources, t_name: str):
    t = entity[t_name]
    if t is None or any(entity[k] is None for k in keys):
        return None
    rows = [
        r
        for r in sources[feature.source_table]
        if all(r[k] is not None and r[k] == entity[k] for k in keys)
        and r["ts"] is not None
        and t - feature.window <= r["ts"] < t
        and r["avail"] is not None
        and r["avail"] <= t
    ]
    return AGGREGATES[feature.aggregate](rows)


def reference_snapshot(entity: dict, fv: FeatureView, rows: list[dict], column: str, t_name: str):
    t = entity[t_name]
    if t is None or any(entity[k] is None for k in fv.entity_columns):
        return None
    usable = [
        r
        for r in rows
        if all(r[k] is not None and r[k] == entity[k] for k in fv.entity_columns) and r["ts"] <= t and r["created"] <= t
    ]
    if not usable:
        return None
    best = max(usable, key=lambda r: (r["ts"], r["created"]))
    if fv.ttl is not None and best["ts"] < t - fv.ttl:
        return None
    return best[column]


def reference_training_set(case: Case, accuracy: str) -> tuple[list[str], list[tuple]]:
    by_view: dict[str, list[str]] = {}
    for name in case.requested:
        view_name, _, feature = name.partition(":")
        by_view.setdefault(view_name, []).append(feature)
    names = list(case.entity_types)
    for view_name, features in by_view.items():
        names += [f"{view_name}__{f}" if case.full_names else f for f in features]
    out = []
    for entity in case.entity_rows:
        values = [entity[c] for c in case.entity_types]
        for view_name, features in by_view.items():
            fv = case.views[view_name]
            for f in features:
                if accuracy == "temporal":
                    declared = fv.temporal_view().feature(f)
                    values.append(reference_temporal(entity, fv.entity_columns, declared, case.sources, case.t_name))
                else:
                    values.append(reference_snapshot(entity, fv, case.snapshot_rows[view_name], f, case.t_name))
        out.append(tuple(values))
    return names, out


def test_references_on_a_hand_case():
    """The temporal reference itself, worked out by hand: window [t - 2h, t), available at t."""
    feature = TemporalFeature("f1", "src", "ts", "avail", "count(*)", dt.timedelta(hours=2))
    rows = [
        {"user_id": "u", "ts": h(1), "avail": h(1)},
        {"user_id": "u", "ts": h(2), "avail": h(4)},
        {"user_id": "u", "ts": h(3), "avail": h(3)},
        {"user_id": None, "ts": h(3), "avail": h(3)},
    ]
    counts = [
        reference_temporal({"user_id": u, "t": t}, ("user_id",), feature, {"src": rows}, "t")
        for u, t in [("u", h(1)), ("u", h(2)), ("u", h(3)), ("u", h(4)), ("u", h(5)), ("x", h(4)), (None, h(4))]
    ]
    assert counts == [0, 1, 1, 2, 1, 0, None]


# --- random cases ----------------------------------------------------------------------------


@dataclass
class Case:
    views: dict[str, FeatureView]
    snapshot_rows: dict[str, list[dict]]
    sources: dict[str, list[dict]]
    entity_types: dict[str, str]
    entity_rows: list[dict]
    t_name: str
    full_names: bool
    requested: list[str]  # view:feature names
    undeclared: list[str]  # requested features without a temporal declaration


def random_case(seed: int) -> Case:
    rng = random.Random(seed)
    ids = [f"u{i}" for i in range(rng.randint(1, 3))]
    regions = ["n", "s"]
    span = rng.choice([6, 12, 48])  # hours of grid: small spans put many rows on the window's edges
    full_names = seed % 2 == 1
    t_name = rng.choice(["event_timestamp", "as_of"])

    def grid() -> dt.datetime:
        # Whole hours mostly (edges meet exactly), now and then a half hour.
        return h(rng.randint(0, span) + rng.choice([0, 0, 0, 0.5]))

    def maybe_none(value, p=0.1):
        return None if rng.random() < p else value

    sources = {}
    for source in ("clicks", "orders"):
        rows = []
        for _ in range(rng.randint(0, 40)):
            ts = maybe_none(grid(), 0.03)
            delay = rng.choice([0, 0, 0, 1, 2, 5, -1])  # mostly at once; some late; one early (skewed clock)
            rows.append(
                {
                    "user_id": maybe_none(rng.choice(ids), 0.05),
                    "region": rng.choice(regions),
                    "ts": ts,
                    "avail": maybe_none(None if ts is None else ts + dt.timedelta(hours=delay), 0.03),
                    "kind": rng.choice(["buy", "view", "view"]),
                    "amount": maybe_none(rng.randint(0, 50)),
                    "price": maybe_none(rng.randint(0, 40) / 4),
                    "label": maybe_none(rng.choice("abc")),
                }
            )
        sources[source] = rows

    views, snapshot_rows = {}, {}
    specs = [("view_a", ("user_id",)), ("view_b", ("user_id", "region"))]
    for name, keys in specs[: rng.randint(1, 2)]:
        declared = [f for f in FEATURES if rng.random() < 0.8]
        temporal = [
            TemporalFeature(
                name=f,
                source_table=rng.choice(list(sources)),
                timestamp_column="ts",
                available_column="avail",
                aggregate=rng.choice(list(AGGREGATES)),
                window=dt.timedelta(hours=rng.choice([0.5, 1, 2, 3, 6, 24])),
            )
            for f in declared
        ]
        ttl = rng.choice([None, dt.timedelta(hours=1), dt.timedelta(hours=rng.randint(2, 8))])
        views[name] = view(name, keys, temporal, ttl)
        rows, seen = [], set()
        for _ in range(rng.randint(0, 20)):
            row = {"user_id": maybe_none(rng.choice(ids), 0.05), "region": rng.choice(regions), "ts": grid()}
            row["created"] = row["ts"] + dt.timedelta(hours=rng.choice([0, 0, 1, 3]))
            identity = (*(row[k] for k in keys), row["ts"], row["created"])
            if identity in seen:  # ambiguous rows are refused by the join, tested in test_point_in_time
                continue
            seen.add(identity)
            row["day"] = row["ts"].date()
            row |= {
                "f1": maybe_none(rng.randint(-9, 9)),
                "f2": maybe_none(rng.randint(0, 9)),
                "f3": maybe_none(rng.randint(0, 8) / 2),
                "f4": maybe_none(rng.choice("xyz")),
            }
            rows.append(row)
        snapshot_rows[name] = rows

    requested: list[str] = []
    for name in views:
        chosen = [f for f in FEATURES if rng.random() < 0.6] or ["f1"]
        rng.shuffle(chosen)
        requested += [f"{name}:{f}" for f in chosen]
    if not full_names:  # without prefixes one name may come from one view only: the first keeps it
        first = {}
        for r in requested:
            first.setdefault(r.split(":")[1], r)
        requested = [r for r in requested if first[r.split(":")[1]] == r]
    rng.shuffle(requested)
    undeclared = [r for r in requested if r.split(":")[1] not in {t.name for t in views[r.split(":")[0]].temporal}]

    # The entity rows also carry a column named like a source column (amount): the aggregates must
    # still read the source's.
    entity_types = {"user_id": "VARCHAR", "region": "VARCHAR", t_name: "TIMESTAMP", "amount": "BIGINT"}
    entity_rows: list[dict] = []
    for _ in range(rng.randint(0, 30)):
        if entity_rows and rng.random() < 0.1:
            entity_rows.append(dict(rng.choice(entity_rows)))  # exact duplicate: comes back twice
            continue
        entity_rows.append(
            {
                "user_id": maybe_none(rng.choice([*ids, "zz"]), 0.1),
                "region": maybe_none(rng.choice(regions), 0.1),
                t_name: maybe_none(grid(), 0.08),
                "amount": rng.randint(0, 1),
            }
        )
    return Case(views, snapshot_rows, sources, entity_types, entity_rows, t_name, full_names, requested, undeclared)


def load(case: Case) -> duckdb.DuckDBPyConnection:
    con = connect()
    for name, rows in case.sources.items():
        create_table(con, name, SOURCE_TYPES, rows)
    snapshot_types = {"user_id": "VARCHAR", "region": "VARCHAR", "day": "DATE", "ts": "TIMESTAMP"}
    snapshot_types |= {"created": "TIMESTAMP", **SNAPSHOT_TYPES}
    for name, rows in case.snapshot_rows.items():
        create_table(con, name, snapshot_types, rows)
    return con


@pytest.mark.parametrize("accuracy", ["snapshot", "temporal"])
@pytest.mark.parametrize("seed", range(60))
def test_matches_reference_on_random_data(seed, accuracy):
    case = random_case(seed)
    con = load(case)
    frame = entity_frame(case.entity_rows, case.entity_types)

    def training_set():
        return get_training_set(
            con,
            frame,
            case.requested,
            accuracy=accuracy,
            full_feature_names=case.full_names,
            entity_timestamp=case.t_name,
            views=case.views,
        )

    if accuracy == "temporal" and case.undeclared:
        with pytest.raises(ValueError, match="no temporal declaration") as refused:
            training_set()
        assert all(repr(name) in str(refused.value) for name in case.undeclared)
        # Without them, the rest is served.
        case.requested = [r for r in case.requested if r not in case.undeclared]
        if not case.requested:
            return
    relation = training_set()
    got = relation.fetchall()
    names, expected = reference_training_set(case, accuracy)
    assert relation.columns == names
    assert len(got) == len(expected) == len(case.entity_rows)
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g == e, f"entity row {i}: {case.entity_rows[i]}"


def test_random_cases_exercise_the_edges():
    """The generator does produce the cases the property test relies on."""
    seen = set()
    for seed in range(60):
        case = random_case(seed)
        seen.add(("full_names", case.full_names))
        seen |= {"undeclared"} if case.undeclared else set()
        seen |= {"two views"} if len(case.views) == 2 else set()
        for e in case.entity_rows:
            t = e[case.t_name]
            seen |= {"null key"} if e["user_id"] is None else set()
            seen |= {"null time"} if t is None else set()
            seen |= {"unknown key"} if e["user_id"] == "zz" else set()
            if t is None or e["user_id"] is None:
                continue
            for fv in case.views.values():
                for f in fv.temporal:
                    same = [r for r in case.sources[f.source_table] if r["user_id"] == e["user_id"] and r["ts"]]
                    seen |= {"ts == t - window"} if any(r["ts"] == t - f.window for r in same) else set()
                    seen |= {"ts == t"} if any(r["ts"] == t for r in same) else set()
                    seen |= {"available == t"} if any(r["avail"] == t for r in same) else set()
                    if any(t - f.window <= r["ts"] < t and r["avail"] and r["avail"] > t for r in same):
                        seen.add("in window, not yet available")
                    if not any(t - f.window <= r["ts"] < t for r in same):
                        seen.add("empty window")
        if len(case.entity_rows) != len({tuple(e.values()) for e in case.entity_rows}):
            seen.add("duplicate entity rows")
    assert seen >= {
        "null key",
        "null time",
        "unknown key",
        "undeclared",
        "two views",
        ("full_names", True),
        ("full_names", False),
        "ts == t - window",
        "ts == t",
        "available == t",
        "in window, not yet available",
        "empty window",
        "duplicate entity rows",
    }


# --- edges by hand ---------------------------------------------------------------------------


def source(con: duckdb.DuckDBPyConnection, rows: list[tuple], name: str = "src") -> None:
    """Source rows (user_id, ts, avail, kind, amount)."""
    con.execute(f'CREATE TABLE "{name}" (user_id VARCHAR, ts TIMESTAMP, avail TIMESTAMP, kind VARCHAR, amount DOUBLE)')
    if rows:
        con.executemany(f'INSERT INTO "{name}" VALUES (?, ?, ?, ?, ?)', rows)


def entities(*rows: tuple) -> pd.DataFrame:
    return entity_frame(
        [{"user_id": u, "event_timestamp": t} for u, t in rows], {"user_id": "VARCHAR", "event_timestamp": "TIMESTAMP"}
    )


def spend(window=dt.timedelta(hours=2), name="spend") -> TemporalFeature:
    return TemporalFeature(
        name, "src", "ts", "avail", "coalesce(sum(amount) FILTER (WHERE kind = 'buy'), 0.0)", window=window
    )


def values(con, rows, *features: TemporalFeature) -> list[tuple]:
    declared = TemporalView("v", ("user_id",), features)
    relation = temporal_join(con, entities(*rows), [(declared, [f.name for f in features])])
    return [r[2:] for r in relation.fetchall()]


def test_window_starts_at_t_minus_window_inclusive_and_ends_before_t():
    con = connect()
    source(con, [("u", h(1), h(1), "buy", 1.0), ("u", h(2), h(2), "buy", 10.0), ("u", h(3), h(3), "buy", 100.0)])
    # At 3:00 the window is [1:00, 3:00): 1:00 counts, 3:00 (the entity's own moment) does not.
    rows = [("u", h(3) - MICRO), ("u", h(3)), ("u", h(3) + MICRO), ("u", h(5)), ("u", h(5) + MICRO)]
    assert values(con, rows, spend()) == [(11.0,), (11.0,), (110.0,), (100.0,), (0.0,)]


def test_rows_count_only_once_available():
    con = connect()
    # Bought at 1:00, but it reached the platform at 2:30.
    source(con, [("u", h(1), h(2.5), "buy", 5.0), ("u", h(0.5), h(0.5), "buy", 1.0)])
    rows = [("u", h(2)), ("u", h(2.5) - MICRO), ("u", h(2.5)), ("u", h(2.75))]
    assert values(con, rows, spend()) == [(1.0,), (1.0,), (6.0,), (5.0,)]


def test_empty_windows_give_the_aggregates_empty_value_and_unknown_keys_or_times_null():
    con = connect()
    source(con, [("u", h(1), h(1), "view", 5.0)])
    features = (
        spend(),  # coalesced: 0.0 (and 0.0 too when the window holds only views)
        TemporalFeature("events", "src", "ts", "avail", "count(*)", dt.timedelta(hours=2)),
        TemporalFeature("raw_sum", "src", "ts", "avail", "sum(amount)", dt.timedelta(hours=2)),
    )
    rows = [("u", h(2)), ("u", h(10)), ("nobody", h(2)), (None, h(2)), ("u", None)]
    assert values(con, rows, *features) == [
        (0.0, 1, 5.0),
        (0.0, 0, None),
        (0.0, 0, None),
        (None, None, None),
        (None, None, None),
    ]


def test_order_duplicates_index_and_table_entities():
    con = connect()
    source(con, [("a", h(1), h(1), "buy", 1.0), ("b", h(1), h(1), "buy", 2.0)])
    declared = TemporalView("v", ("user_id",), (spend(),))
    frame = entities(("b", h(2)), ("a", h(2)), ("b", h(2)), ("a", h(0)))
    frame.index = [7, 3, 3, 1]
    assert temporal_join(con, frame, [(declared, ["spend"])]).fetchall() == [
        ("b", h(2), 2.0),
        ("a", h(2), 1.0),
        ("b", h(2), 2.0),
        ("a", h(0), 0.0),
    ]
    con.execute("CREATE TABLE spine AS SELECT * FROM frame")
    relation = temporal_join(con, "spine", [(declared, ["spend"])], full_feature_names=True)
    assert relation.columns == ["user_id", "event_timestamp", "v__spend"]
    assert [r[2] for r in relation.fetchall()] == [2.0, 1.0, 2.0, 0.0]


def test_empty_entity_frame():
    con = connect()
    source(con, [("a", h(1), h(1), "buy", 1.0)])
    declared = TemporalView("v", ("user_id",), (spend(),))
    relation = temporal_join(con, entities(), [(declared, ["spend"])])
    assert relation.columns == ["user_id", "event_timestamp", "spend"]
    assert relation.fetchall() == []


def test_a_feature_without_temporal_declaration_is_refused_by_name():
    fv = view("scores", ("user_id",), [TemporalFeature("f1", "src", "ts", "avail", "count(*)", dt.timedelta(days=1))])
    con = connect()
    source(con, [])
    frame = entities(("u", h(1)))
    # Mixed requests are refused too: snapshot features are asked for in their own call.
    refused = r"no temporal declaration for \['scores:f2'\]; the views' temporal features: \{'scores': \['f1'\]\}"
    with pytest.raises(ValueError, match=refused):
        get_training_set(con, frame, ["scores:f1", "scores:f2"], accuracy="temporal", views={"scores": fv})
    with pytest.raises(ValueError, match="accuracy"):
        get_training_set(con, frame, ["scores:f1"], accuracy="exact", views={"scores": fv})


def test_declarations_are_checked():
    def declare(name, window=dt.timedelta(days=1)):
        return TemporalFeature(name, "src", "ts", "avail", "count(*)", window)

    with pytest.raises(ValueError, match=r"temporal \['nope'\] are not features"):
        view("scores", ("user_id",), [declare("f1"), declare("nope")])
    with pytest.raises(ValueError, match=r"\['ts'\] are not features"):
        view("scores", ("user_id",), [declare("ts")])  # the timestamp is no feature
    with pytest.raises(ValueError, match=r"\['f1'\] declared more than once"):
        view("scores", ("user_id",), [declare("f1"), declare("f1", dt.timedelta(days=2))])
    with pytest.raises(ValueError, match="window must be positive"):
        declare("f1", dt.timedelta(0))


def test_user_activity_declares_its_windowed_features():
    from ml_platform.training import feature_views

    declared = {f.name: f for f in feature_views()["user_activity"].temporal}
    assert set(declared) >= {"spend_7d", "spend_30d", "events_7d", "events_30d"}
    assert {f.available_column for f in declared.values()} == {"ingested_at"}
    assert declared["spend_30d"].window == dt.timedelta(days=30)


# --- on pipeline data: user_activity at 14:05 --------------------------------------------------

EVENTS = "event_id,user_id,event_type,event_time,product_id,amount,device_type,session_id\n"
USERS = "user_id,signup_date,country,plan\nu1,2026-10-01,DE,free\nu2,2026-10-15,US,pro\n"


def test_temporal_sees_up_to_the_entitys_minute_snapshot_up_to_midnight(runner, data_dir, monkeypatch):
    """u1 buys on 10-28 at 14:04 (100) and 14:05 (50), on 11-02 at 08:00 (20) and on 11-04 at 10:00
    (10), each file ingested soon after. At 11-04 14:05 the temporal 7 days are [10-28 14:05,
    11-04 14:05): 50 + 20 + 10 = 80. The snapshot (user_activity as of 11-04) covers the days
    10-28 to 11-03: 100 + 50 + 20 = 170, without the morning of 11-04."""
    import ml_platform.ingestion.files.assets as file_assets

    write_landing(data_dir, "users", "2026-11-01", "users.csv", USERS)
    events = {
        "2026-10-28": [
            "b1,u1,purchase,2026-10-28T14:04:00Z,P1,100.0,mobile,s1",
            "b2,u1,purchase,2026-10-28T14:05:00Z,P1,50.0,mobile,s1",
        ],
        "2026-11-02": [
            "a1,u1,purchase,2026-11-02T08:00:00Z,P2,20.0,mobile,s2",
            "a2,u1,page_view,2026-11-02T08:05:00Z,,,mobile,s2",
        ],
        "2026-11-04": [
            "a3,u1,purchase,2026-11-04T10:00:00Z,P3,10.0,desktop,s3",
            "a4,u1,page_view,2026-11-04T13:00:00Z,,,desktop,s3",
        ],
        # Landed the next day: a purchase before 14:05 that was not known at 14:05, one at 14:05
        # exactly (the entity's own moment) and one after.
        "2026-11-05": [
            "a5,u1,purchase,2026-11-04T14:03:00Z,P4,7.0,desktop,s3",
            "a6,u1,purchase,2026-11-04T14:05:00Z,P4,3.0,desktop,s3",
            "a7,u1,purchase,2026-11-04T20:00:00Z,P5,1.0,mobile,s4",
        ],
    }
    ingested = {
        "2026-10-28": dt.datetime(2026, 10, 28, 23),
        "2026-11-02": dt.datetime(2026, 11, 2, 9),
        "2026-11-04": dt.datetime(2026, 11, 4, 14),
        "2026-11-05": dt.datetime(2026, 11, 5, 1),
    }
    for day, rows in events.items():
        write_landing(data_dir, "events", day, "events.csv", EVENTS + "\n".join(rows) + "\n")
        monkeypatch.setattr(file_assets, "ingestion_time", lambda at=ingested[day]: at)
        runner.run("raw_events", partition=day)
    monkeypatch.setattr(file_assets, "ingestion_time", lambda: dt.datetime(2026, 11, 1, 6))
    runner.run("raw_users", partition="2026-11-01")
    runner.run("clean_users")
    runner.run("clean_events", range_=("2026-10-28", "2026-11-05"))
    runner.run("user_activity", range_=("2026-11-04", "2026-11-05"))

    entities_ = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u1", "u2"],
            "event_timestamp": pd.to_datetime(
                ["2026-11-04 14:05", "2026-11-04 09:00", "2026-11-05 02:00", "2026-11-04 14:05"]
            ),
        }
    )
    features = ["user_activity:spend_7d", "user_activity:events_7d", "user_activity:spend_30d"]
    con = connect_warehouse(data_dir / "warehouse.duckdb", read_only=True)
    try:
        # user_activity holds pseudonyms; the temporal features meet clean_events' raw ids through them.
        entities_ = pseudonymize(con, entities_, ["user_id"])
        snapshot = get_training_set(con, entities_, features).fetchall()
        temporal = get_training_set(con, entities_, features, accuracy="temporal").fetchall()
    finally:
        con.close()
    at = dt.datetime
    u1, u2 = pseudonym("u1"), pseudonym("u2")
    assert snapshot == [
        # The row as of 11-04 (days 10-28 … 11-03, known since 11-03 ended).
        (u1, at(2026, 11, 4, 14, 5), 170.0, 4, 170.0),
        (u1, at(2026, 11, 4, 9), 170.0, 4, 170.0),
        # The row as of 11-05 is known only once 11-05's landing is over: still the 11-04 row.
        (u1, at(2026, 11, 5, 2), 170.0, 4, 170.0),
        (u2, at(2026, 11, 4, 14, 5), None, None, None),  # no events, no row
    ]
    assert temporal == [
        # [10-28 14:05, 11-04 14:05): b2, a1, a2, a3, a4. Not b1 (14:04, a minute too old), not a5
        # (bought 14:03 but ingested 11-05), not a6 (at 14:05 itself). The 30 days keep b1.
        (u1, at(2026, 11, 4, 14, 5), 80.0, 5, 180.0),
        # At 09:00 the morning purchase is still ahead: 10-28 14:04 and 14:05 are in.
        (u1, at(2026, 11, 4, 9), 170.0, 4, 170.0),
        # At 11-05 02:00: [10-29 02:00, …): a1 … a7, everything landed on 11-05 01:00 included;
        # the 30 days also b1 and b2.
        (u1, at(2026, 11, 5, 2), 41.0, 7, 191.0),
        (u2, at(2026, 11, 4, 14, 5), 0.0, 0, 0.0),  # a known user, an empty window: 0.0 and 0
    ]
