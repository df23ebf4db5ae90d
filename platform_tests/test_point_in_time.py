"""Point-in-time join against a plain-Python reference of its spec, on random and exact data.

The reference below is written from the module docstring of `ml_platform.point_in_time.join`
only: for each entity row, for each view, the usable rows are those with the same (non-NULL) keys,
`ts <= t` and `created <= t`; the best is the greatest (ts, created); a TTL then blanks it when its
`ts < t - ttl`, with no fallback to an older row.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

import pandas as pd
import pytest

from helpers import connect, create_table, entity_frame
from ml_platform.point_in_time.join import AmbiguousFeatureRows, FeatureTable, point_in_time_join

T0 = dt.datetime(2026, 3, 1)


def h(hours: float) -> dt.datetime:
    """A time on the test grid: T0 plus some hours."""
    return T0 + dt.timedelta(hours=hours)


# --- reference -------------------------------------------------------------------------------


@dataclass
class View:
    """A feature view as plain data: its FeatureTable and its rows as dicts."""

    table: FeatureTable
    rows: list[dict]
    columns: list[str]  # the requested features


def reference_join(
    entity_columns: list[str], entity_rows: list[dict], views: list[View], *, full_names: bool, timestamp: str
) -> tuple[list[str], list[tuple]]:
    names = list(entity_columns)
    for view in views:
        names += [f"{view.table.name}__{c}" if full_names else c for c in view.columns]
    out = []
    for entity in entity_rows:
        values = [entity[c] for c in entity_columns]
        t = entity[timestamp]
        for view in views:
            ft = view.table
            best, best_order = None, None
            keys_known = all(entity[k] is not None for k in ft.entity_columns)
            if t is not None and keys_known:
                for r in view.rows:
                    if any(r[k] is None or r[k] != entity[k] for k in ft.entity_columns):
                        continue
                    ts = r[ft.timestamp_column]
                    created = r[ft.created_column] if ft.created_column else ts
                    if ts <= t and created <= t and (best_order is None or (ts, created) > best_order):
                        best, best_order = r, (ts, created)
            if best is not None and ft.ttl is not None and best[ft.timestamp_column] < t - ft.ttl:
                best = None
            values += [None if best is None else best[c] for c in view.columns]
        out.append(tuple(values))
    return names, out


def test_reference_on_a_hand_case():
    """The reference itself, on one case worked out by hand."""
    ft = FeatureTable("v", "v", ("k",), "ts", "created", ttl=dt.timedelta(hours=4))
    rows = [
        {"k": "a", "ts": h(1), "created": h(1), "x": 1},
        {"k": "a", "ts": h(1), "created": h(3), "x": 2},
        {"k": "a", "ts": h(2), "created": h(6), "x": 3},
    ]
    entities = [{"k": "a", "t": h(t)} for t in (0, 1, 2, 3, 4, 5, 5.5, 6)] + [{"k": None, "t": h(6)}]
    _, got = reference_join(["k", "t"], entities, [View(ft, rows, ["x"])], full_names=False, timestamp="t")
    assert [r[-1] for r in got] == [None, 1, 1, 2, 2, 2, None, 3, None]


# --- building the inputs in DuckDB --------------------------------------------------------------


# --- property test ---------------------------------------------------------------------------


def random_case(seed: int):
    rng = random.Random(seed)
    ids = [f"u{i}" for i in range(rng.randint(1, 4))]
    regions = ["n", "s"]
    span = rng.choice([4, 12, 24, 72])  # hours of grid: small spans make ties frequent
    full_names = seed % 2 == 1
    timestamp = rng.choice(["event_timestamp", "as_of"])

    def grid() -> dt.datetime:
        return h(rng.randint(0, span))

    def maybe_none(value, p=0.15):
        return None if rng.random() < p else value

    specs = [("user_view", ("user_id",))]
    if rng.random() < 0.7:
        specs.append(("user_region_view", ("user_id", "region")))
    rng.shuffle(specs)

    views = []
    for index, (name, keys) in enumerate(specs):
        created_column = rng.choice([None, "created", "created"])
        ttl = rng.choice([None, None, dt.timedelta(0), dt.timedelta(hours=1), dt.timedelta(hours=rng.randint(2, 6))])
        table = f"features_{index}"
        # With full names, both views use the same feature names: the prefixes must tell them apart.
        prefix = "" if full_names else f"{name}_"
        feature_types = {f"{prefix}amount": "BIGINT", f"{prefix}label": "VARCHAR"}
        rows, seen = [], set()
        for _ in range(rng.randint(0, 25)):
            if rows and rng.random() < 0.25:  # a correction: same keys and ts, another created
                row = {k: rng.choice(rows)[k] for k in ("user_id", "region", "ts")}
            else:
                row = {"user_id": maybe_none(rng.choice(ids), 0.05), "region": rng.choice(regions), "ts": grid()}
            delay = rng.choice([0, 0, -2, -1, 1, 2, 5])
            row["created"] = row["ts"] + dt.timedelta(hours=delay)
            identity = (*(row[k] for k in keys), row["ts"], row["created"] if created_column else None)
            if identity in seen:  # the spec refuses such rows: tested separately
                continue
            seen.add(identity)
            row[f"{prefix}amount"] = maybe_none(rng.randint(-100, 100))
            row[f"{prefix}label"] = maybe_none(rng.choice(["a", "b", "c", "d"]))
            rows.append(row)
        types = {k: "VARCHAR" for k in keys} | {"ts": "TIMESTAMP"}
        if created_column:
            types["created"] = "TIMESTAMP"
        types |= feature_types
        rows = [{c: r[c] for c in types} for r in rows]
        requested = rng.choice([list(feature_types), list(feature_types)[:1], list(feature_types)[::-1]])
        ft = FeatureTable(name, table, keys, "ts", created_column, ttl)
        views.append((View(ft, rows, requested), types))

    unknown = "zz"
    entity_types = {"user_id": "VARCHAR", "region": "VARCHAR", timestamp: "TIMESTAMP", "target": "BIGINT"}
    entity_rows = []
    for _ in range(rng.randint(0, 30)):
        if entity_rows and rng.random() < 0.15:
            entity_rows.append(dict(rng.choice(entity_rows)))  # exact duplicate
            continue
        entity_rows.append(
            {
                "user_id": maybe_none(rng.choice([*ids, unknown]), 0.1),
                "region": maybe_none(rng.choice(regions), 0.1),
                timestamp: maybe_none(grid(), 0.08),
                "target": rng.randint(0, 1),
            }
        )
    return views, entity_types, entity_rows, full_names, timestamp


@pytest.mark.parametrize("seed", range(40))
def test_matches_reference_on_random_data(seed):
    views, entity_types, entity_rows, full_names, timestamp = random_case(seed)
    con = connect()
    for view, types in views:
        create_table(con, view.table.table, types, view.rows)
    frame = entity_frame(entity_rows, entity_types)

    relation = point_in_time_join(
        con,
        frame,
        [(v.table, v.columns) for v, _ in views],
        full_feature_names=full_names,
        entity_timestamp=timestamp,
    )
    got = relation.fetchall()

    names, expected = reference_join(
        list(entity_types), entity_rows, [v for v, _ in views], full_names=full_names, timestamp=timestamp
    )
    assert relation.columns == names
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g == e, f"entity row {i}: {entity_rows[i]}"


def test_random_cases_exercise_the_boundaries():
    """The generator does produce the interesting cases the property test relies on."""
    seen = set()
    for seed in range(40):
        views, _, entity_rows, full_names, timestamp = random_case(seed)
        seen.add(("full_names", full_names))
        for e in entity_rows:
            seen |= {"null key"} if e["user_id"] is None else set()
            seen |= {"null time"} if e[timestamp] is None else set()
            seen |= {"unknown key"} if e["user_id"] == "zz" else set()
        for view, _ in views:
            ft = view.table
            seen.add(("created", ft.created_column is not None))
            seen.add(("ttl", ft.ttl is not None))
            for r in view.rows:
                if ft.created_column:
                    c, ts = r["created"], r["ts"]
                    seen.add("created < ts" if c < ts else "created == ts" if c == ts else "created > ts")
            times = {e[timestamp] for e in entity_rows}
            if any(r["ts"] in times for r in view.rows):
                seen.add("t == ts")
            if ft.created_column and any(r["created"] in times for r in view.rows):
                seen.add("t == created")
            if ft.ttl is not None and any(r["ts"] + ft.ttl in times for r in view.rows):
                seen.add("t - ttl == ts")
    assert seen >= {
        "null key",
        "null time",
        "unknown key",
        ("full_names", True),
        ("full_names", False),
        ("created", True),
        ("created", False),
        ("ttl", True),
        ("ttl", False),
        "created < ts",
        "created == ts",
        "created > ts",
        "t == ts",
        "t == created",
        "t - ttl == ts",
    }


# --- exact examples ----------------------------------------------------------------------------

VALUE_TYPES = {"user_id": "VARCHAR", "ts": "TIMESTAMP", "created": "TIMESTAMP", "value": "BIGINT"}


def value_table(con, rows, *, name="values_table", created=True):
    """A feature table (user_id, ts[, created], value) from tuples."""
    types = dict(VALUE_TYPES) if created else {k: v for k, v in VALUE_TYPES.items() if k != "created"}
    create_table(con, name, types, [dict(zip(types, r, strict=True)) for r in rows])


def entities(*rows) -> pd.DataFrame:
    """Entity rows (user_id, event_timestamp) as a DataFrame."""
    return entity_frame(
        [{"user_id": u, "event_timestamp": t} for u, t in rows], {"user_id": "VARCHAR", "event_timestamp": "TIMESTAMP"}
    )


def values_at(con, view, rows, column="value"):
    relation = point_in_time_join(con, entities(*rows), [(view, [column])])
    return [r[-1] for r in relation.fetchall()]


def test_correction_is_invisible_before_it_is_written_and_wins_after():
    con = connect()
    value_table(con, [("u", h(10), h(10), 1), ("u", h(10), h(12), 2)])
    view = FeatureTable("v", "values_table", ("user_id",), "ts", "created")
    times = [h(9), h(10), h(11), h(12) - dt.timedelta(microseconds=1), h(12), h(13)]
    assert values_at(con, view, [("u", t) for t in times]) == [None, 1, 1, 1, 2, 2]


def test_late_backfill_of_an_old_timestamp_never_leaks():
    con = connect()
    value_table(
        con,
        [
            ("a", h(6), h(6), 1),
            ("a", h(8), h(14), 2),  # backfilled at 14 for time 8
            ("b", h(8), h(14), 99),  # b's only row, also written at 14
        ],
    )
    view = FeatureTable("v", "values_table", ("user_id",), "ts", "created")
    rows = [("a", h(7)), ("a", h(12)), ("a", h(14)), ("a", h(20)), ("b", h(8)), ("b", h(12)), ("b", h(14))]
    assert values_at(con, view, rows) == [1, 1, 2, 2, None, None, 99]


def test_ttl_boundary_is_inclusive():
    con = connect()
    value_table(con, [("u", h(8), h(8), 0), ("u", h(10), h(10), 1)])
    view = FeatureTable("v", "values_table", ("user_id",), "ts", "created", ttl=dt.timedelta(hours=2))
    micro = dt.timedelta(microseconds=1)
    rows = [("u", h(10)), ("u", h(12) - micro), ("u", h(12)), ("u", h(12) + micro), ("u", h(30))]
    assert values_at(con, view, rows) == [1, 1, 1, None, None]


def test_ttl_applies_to_the_newest_usable_row_only():
    """A newer row that is not yet written does not count for the TTL; when the newest usable row
    has expired, the result is NULL rather than any other row."""
    con = connect()
    value_table(con, [("u", h(10), h(10), 1), ("u", h(11), h(13), 2)])
    view = FeatureTable("v", "values_table", ("user_id",), "ts", "created", ttl=dt.timedelta(hours=2))
    # At 12:30 the row of 11:00 would be fresh, but it is written only at 13:00; the usable row of
    # 10:00 has expired, so NULL. At 13:00 the row of 11:00 is usable and exactly 2 h old.
    rows = [("u", h(11)), ("u", h(12)), ("u", h(12.5)), ("u", h(13)), ("u", h(13.5))]
    assert values_at(con, view, rows) == [1, 1, None, 2, None]


def test_ttl_without_created_column():
    con = connect()
    value_table(con, [("u", h(0), 0), ("u", h(5), 5)], created=False)
    view = FeatureTable("v", "values_table", ("user_id",), "ts", ttl=dt.timedelta(hours=1))
    assert values_at(con, view, [("u", h(t)) for t in (0, 1, 2, 4, 5, 6, 7)]) == [0, 0, None, None, 5, 5, None]


def test_unknown_null_keys_and_null_times_keep_their_rows_in_order():
    con = connect()
    value_table(con, [("u", h(1), h(1), 1), (None, h(1), h(1), 7)])
    view = FeatureTable("v", "values_table", ("user_id",), "ts", "created")
    rows = [("u", h(2)), ("nobody", h(2)), (None, h(2)), ("u", None), ("u", h(2)), ("u", h(0)), (None, None)]
    relation = point_in_time_join(con, entities(*rows), [(view, ["value"])])
    assert relation.fetchall() == [
        ("u", h(2), 1),
        ("nobody", h(2), None),
        (None, h(2), None),  # a NULL key matches nothing, not even the NULL-keyed row
        ("u", None, None),
        ("u", h(2), 1),
        ("u", h(0), None),
        (None, None, None),
    ]


def test_all_null_key_column_in_the_frame():
    """A frame whose key column holds only None (DuckDB cannot infer a string type from it)."""
    con = connect()
    value_table(con, [("u", h(1), h(1), 1)])
    view = FeatureTable("v", "values_table", ("user_id",), "ts", "created")
    relation = point_in_time_join(con, entities((None, h(2)), (None, h(3))), [(view, ["value"])])
    assert [r[1:] for r in relation.fetchall()] == [(h(2), None), (h(3), None)]


def test_frame_index_is_ignored_for_order():
    con = connect()
    value_table(con, [("a", h(1), h(1), 1), ("b", h(1), h(1), 2)])
    view = FeatureTable("v", "values_table", ("user_id",), "ts", "created")
    frame = entities(("b", h(2)), ("a", h(2)), ("a", h(0)))
    frame.index = [5, 1, 3]
    relation = point_in_time_join(con, frame, [(view, ["value"])])
    assert relation.fetchall() == [("b", h(2), 2), ("a", h(2), 1), ("a", h(0), None)]


def test_entities_table_name_keeps_table_order():
    con = connect()
    value_table(con, [("a", h(1), h(1), 1), ("b", h(1), h(3), 2), ("a", h(4), h(4), 3)])
    create_table(
        con,
        "spine",
        {"user_id": "VARCHAR", "event_timestamp": "TIMESTAMP", "target": "BIGINT"},
        [
            {"user_id": u, "event_timestamp": t, "target": y}
            for u, t, y in [("b", h(5), 0), ("a", h(5), 1), ("b", h(2), 0), ("a", h(0), 1), ("a", h(2), 0)]
        ],
    )
    view = FeatureTable("v", "values_table", ("user_id",), "ts", "created")
    relation = point_in_time_join(con, "spine", [(view, ["value"])])
    assert relation.columns == ["user_id", "event_timestamp", "target", "value"]
    assert relation.fetchall() == [
        ("b", h(5), 0, 2),
        ("a", h(5), 1, 3),
        ("b", h(2), 0, None),
        ("a", h(0), 1, None),
        ("a", h(2), 0, 1),
    ]


def test_rows_sharing_keys_ts_and_created_are_refused():
    con = connect()
    value_table(con, [("u", h(1), h(2), 1), ("u", h(1), h(2), 2)])
    view = FeatureTable("orders_view", "values_table", ("user_id",), "ts", "created")
    with pytest.raises(AmbiguousFeatureRows, match="orders_view"):
        point_in_time_join(con, entities(("u", h(3))), [(view, ["value"])])


def test_rows_sharing_keys_and_ts_without_created_column_are_refused():
    con = connect()
    value_table(con, [("u", h(1), 1), ("u", h(1), 2)], created=False)
    view = FeatureTable("clicks_view", "values_table", ("user_id",), "ts")
    with pytest.raises(AmbiguousFeatureRows, match="clicks_view"):
        point_in_time_join(con, entities(("u", h(3))), [(view, ["value"])])


def test_rows_differing_only_in_created_are_not_ambiguous():
    con = connect()
    value_table(con, [("u", h(1), h(1), 1), ("u", h(1), h(2), 2), ("v", h(1), h(2), 3)])
    view = FeatureTable("v", "values_table", ("user_id",), "ts", "created")
    assert values_at(con, view, [("u", h(3)), ("v", h(3))]) == [2, 3]


def test_duplicate_feature_names_need_full_names():
    con = connect()
    value_table(con, [("u", h(1), h(1), 1)], name="first")
    value_table(con, [("u", h(2), h(2), 2)], name="second")
    first = FeatureTable("first_view", "first", ("user_id",), "ts", "created")
    second = FeatureTable("second_view", "second", ("user_id",), "ts", "created", ttl=dt.timedelta(hours=1))
    features = [(first, ["value"]), (second, ["value"])]
    with pytest.raises(ValueError, match="value"):
        point_in_time_join(con, entities(("u", h(3))), features)
    relation = point_in_time_join(con, entities(("u", h(3.5)), ("u", h(2))), features, full_feature_names=True)
    assert relation.columns == ["user_id", "event_timestamp", "first_view__value", "second_view__value"]
    assert relation.fetchall() == [("u", h(3.5), 1, None), ("u", h(2), 1, 2)]


def test_empty_entity_frame():
    con = connect()
    value_table(con, [("u", h(1), h(1), 1)])
    view = FeatureTable("v", "values_table", ("user_id",), "ts", "created")
    relation = point_in_time_join(con, entities(), [(view, ["value"])], full_feature_names=True)
    assert relation.columns == ["user_id", "event_timestamp", "v__value"]
    assert relation.fetchall() == []
