"""The Redis online store against a real Redis: ordering by event time, the TTL on read, exact
values, its key layout, and a clear error when Redis is down. The pseudonym computed in Python for
online lookups equals the warehouse's SQL one."""

from __future__ import annotations

import datetime as dt
import math

import duckdb
import pandas as pd
import pytest
import redis

from ml_platform import privacy
from ml_platform.demo.redis_server import free_port, redis_server
from ml_platform.online_store import OnlineRow, OnlineStoreUnavailable, RedisOnlineStore, ViewRead, hash_key

# Rows of the tests that are not about the TTL keep theirs forever (None): T is long past.
T = dt.datetime(2026, 12, 1, 12, 0, 0, 250_000)
TTL = dt.timedelta(hours=2)
MARGIN = dt.timedelta(hours=1)


@pytest.fixture(scope="module")
def server():
    with redis_server() as started:
        yield started


@pytest.fixture
def store(server):
    redis.Redis.from_url(server.url).flushdb()
    opened = RedisOnlineStore(server.url, expire_margin=MARGIN)
    yield opened
    opened.close()


@pytest.fixture
def client(server):
    return redis.Redis.from_url(server.url)


def _micros(moment: dt.datetime) -> int:
    return (moment - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)


def test_an_older_write_is_ignored_and_an_equal_one_corrects(store, client):
    before = store.now()
    first = store.write("clicks", None, [OnlineRow(("u1",), T, {"clicks": 5, "spend": 1.5})])
    older = store.write(
        "clicks", None, [OnlineRow(("u1",), T - dt.timedelta(microseconds=1), {"clicks": 9, "spend": 9.0})]
    )
    correction = store.write("clicks", None, [OnlineRow(("u1",), T, {"clicks": 6, "spend": None})])
    after = store.now()

    assert older == [None]
    assert before <= first[0] <= correction[0] <= after
    # The created stamp returned is the one stored, read back from Redis's clock.
    assert client.hget("ml:clicks:u1", "_created") == str(_micros(correction[0])).encode()
    assert client.hget("ml:clicks:u1", "_ts") == str(_micros(T)).encode()
    at, vectors = store.read("clicks", [("u1",)], ["clicks", "spend"], None, at=T)
    assert (at, vectors) == (T, [{"clicks": 6, "spend": None}])
    # Newer wins whatever the order of arrival; rows of one batch are taken in order.
    stamps = store.write(
        "clicks",
        None,
        [OnlineRow(("u1",), T + dt.timedelta(seconds=1), {"clicks": 7}), OnlineRow(("u1",), T, {"clicks": 1})],
    )
    assert stamps[0] is not None and stamps[1] is None
    assert store.read("clicks", [("u1",)], ["clicks", "spend"], None, at=T + dt.timedelta(seconds=1))[1] == [
        {"clicks": 7, "spend": None}  # the whole row was replaced: spend is no longer there
    ]


def test_the_ttl_nulls_a_stale_value_before_its_key_expires(store, client):
    now = store.now()
    ts = now - TTL - dt.timedelta(seconds=1)  # stale now, its key kept for the margin
    store.write("clicks", TTL, [OnlineRow(("u1",), ts, {"clicks": 5})])

    assert client.exists("ml:clicks:u1") == 1
    assert client.pexpiretime("ml:clicks:u1") == (_micros(ts + TTL + MARGIN)) // 1000
    at, vectors = store.read("clicks", [("u1",)], ["clicks"], TTL)
    assert vectors == [{"clicks": None}] and at >= now
    # Exactly at ts + ttl it is still fresh; a microsecond later it is not.
    assert store.read("clicks", [("u1",)], ["clicks"], TTL, at=ts + TTL)[1] == [{"clicks": 5}]
    assert store.read("clicks", [("u1",)], ["clicks"], TTL, at=ts + TTL + dt.timedelta(microseconds=1))[1] == [
        {"clicks": None}
    ]
    # A row stamped after the lookup time is not served either: it was not known then.
    assert store.read("clicks", [("u1",)], ["clicks"], TTL, at=ts - dt.timedelta(microseconds=1))[1] == [
        {"clicks": None}
    ]
    # Without a TTL nothing is stale and the key never expires.
    store.write("forever", None, [OnlineRow(("u1",), dt.datetime(2000, 1, 1), {"clicks": 1})])
    assert store.read("forever", [("u1",)], ["clicks"], None)[1] == [{"clicks": 1}]
    assert client.pttl("ml:forever:u1") == -1


def test_a_row_already_past_its_expiry_is_not_kept(store, client):
    stamps = store.write("clicks", TTL, [OnlineRow(("u1",), dt.datetime(2020, 1, 1), {"clicks": 5})])
    assert stamps[0] is not None
    assert client.exists("ml:clicks:u1") == 0


FLOATS = [
    0.1 + 0.2,
    1 / 3,
    -0.0,
    5e-324,  # the smallest subnormal
    2.2250738585072014e-308,
    1.7976931348623157e308,
    math.nextafter(1.0, 2.0),
    123456789.12345679,
    math.inf,
    -math.inf,
]
OTHERS = [
    0,
    -1,
    2**53 + 1,
    2**63 - 1,
    -(2**63),
    True,
    False,
    None,
    "",
    "é ü 字 🙂",
    "a:b%3A\nc",
    'nul \x00 byte, tab \t, quote " and backslash \\',
    "n",
    "i5",
]


def test_values_round_trip_exactly(store):
    values = {f"f{i}": v for i, v in enumerate(FLOATS)} | {f"o{i}": v for i, v in enumerate(OTHERS)}
    values["nan"] = math.nan
    store.write("typed", None, [OnlineRow(("u1",), T, values)])
    _, (vector,) = store.read("typed", [("u1",)], list(values), None)

    assert math.isnan(vector.pop("nan"))
    del values["nan"]
    assert vector == values
    for name, value in values.items():  # same type and, for floats, the same bits (-0.0 included)
        assert type(vector[name]) is type(value), name
        if isinstance(value, float):
            assert vector[name].hex() == value.hex(), name


def test_one_hash_per_entity_and_view(store, client):
    store.write("clicks", None, [OnlineRow(("u1",), T, {"clicks": 1}), OnlineRow(("u2",), T, {"clicks": 2})])
    store.write("spend", None, [OnlineRow(("u1",), T, {"spend": 1.0, "orders": 3})])
    store.write("pairs", None, [OnlineRow(("a:b", "c/d%"), T, {"n": 1})])

    assert sorted(client.keys("*")) == [b"ml:clicks:u1", b"ml:clicks:u2", b"ml:pairs:a%3Ab:c%2Fd%25", b"ml:spend:u1"]
    assert hash_key("pairs", ("a:b", "c/d%")) == "ml:pairs:a%3Ab:c%2Fd%25"
    stored = client.hgetall("ml:spend:u1")
    assert set(stored) == {b"_ts", b"_created", b"spend", b"orders"}
    assert (stored[b"spend"], stored[b"orders"]) == (b"f1.0", b"i3")
    # Several views in one read, one lookup time; a missing entity gives nulls.
    at, (clicks, spend) = store.read_views(
        [ViewRead("clicks", [("u2",), ("u9",)], ["clicks"], None), ViewRead("spend", [("u1",)], ["orders"], None)], at=T
    )
    assert (at, clicks, spend) == (T, [{"clicks": 2}, {"clicks": None}], [{"orders": 3}])


def test_a_big_write_goes_in_atomic_chunks_and_every_row_gets_its_answer(server, client):
    client.flushdb()
    store = RedisOnlineStore(server.url, rows_per_script=2)
    store.write("clicks", None, [OnlineRow(("u3",), T + dt.timedelta(days=1), {"clicks": 0})])
    rows = [OnlineRow((f"u{i}",), T, {"clicks": i}) for i in range(5)]
    stamps = store.write("clicks", None, rows)
    assert [s is None for s in stamps] == [False, False, False, True, False]
    _, vectors = store.read("clicks", [(f"u{i}",) for i in range(5)], ["clicks"], None, at=T + dt.timedelta(days=1))
    assert [v["clicks"] for v in vectors] == [0, 1, 2, 0, 4]


def test_bad_names_and_values_are_refused_naming_them(store):
    with pytest.raises(ValueError, match=r"clicks: feature name '_ts'"):
        store.write("clicks", None, [OnlineRow(("u1",), T, {"_ts": 1})])
    with pytest.raises(TypeError, match=r"clicks\.when: .* not datetime"):
        store.write("clicks", None, [OnlineRow(("u1",), T, {"when": T})])
    with pytest.raises(TypeError, match=r"clicks: entity key parts are strings, not int"):
        store.read("clicks", [(1,)], ["clicks"], None)


def test_a_redis_that_is_down_raises_a_clear_error_without_the_password():
    port = free_port()
    store = RedisOnlineStore(f"redis://:hunter2@127.0.0.1:{port}/0")
    with pytest.raises(OnlineStoreUnavailable) as raised:
        store.read("clicks", [("u1",)], ["clicks"], None)
    message = str(raised.value)
    assert message.startswith(
        f"the online store's Redis at redis://127.0.0.1:{port}/0 is unavailable (reading clicks):"
    )
    assert "hunter2" not in message and "hunter2" not in repr(store)
    with pytest.raises(OnlineStoreUnavailable, match=r"\(writing clicks\)"):
        store.write("clicks", None, [OnlineRow(("u1",), T, {"clicks": 1})])


def test_the_python_pseudonym_equals_the_warehouse_one():
    ids = ["u1", "", "ünïcode 字", "a:b", "x" * 200, 42, None]
    con = duckdb.connect()
    in_sql = privacy.pseudonymize(con, pd.DataFrame({"user_id": pd.Series(ids, dtype=object)}), ["user_id"])
    expected = [None if v is None or v != v else v for v in in_sql["user_id"].tolist()]
    assert [privacy.pseudonym_of(v) for v in ids] == expected
    assert expected[0].startswith("p_") and len(expected[0]) == 34 and expected[-1] is None
