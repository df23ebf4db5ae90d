"""Online features from Redis: the serving asset fills it, `get_online_features` and the HTTP
endpoint read it, and they answer exactly what the warehouse answers for the demo's batch views."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pandas as pd
import pytest
import redis

from conftest import BuiltState, Runner, build_state
from helpers import run_metadata
from ml_platform.definitions import build_definitions
from ml_platform.demo import generate
from ml_platform.demo.redis_server import free_port, redis_server
from ml_platform.online_store import RedisOnlineStore
from ml_platform.training import get_online_features
from ml_platform.training.online_server import start_server
from ml_platform.warehouse import connect

# The demo's batch views built from its files, with the clean table holding each one's raw ids.
VIEWS = {
    "user_activity": ("clean_events", "user_id"),
    "product_features": ("clean_products", "product_id"),
    "device_health": ("clean_telemetry", "device_id"),
}


@pytest.fixture(scope="module")
def redis_url():
    with redis_server() as started:
        yield started.url


@pytest.fixture(scope="module")
def starting_state(tmp_path_factory, redis_url) -> BuiltState:
    """The demo's four days up to yesterday (today's events would still be in the future), its file
    sources and three views built up to today, and latest_features run with Redis configured."""
    today = dt.datetime.now(dt.UTC).date()
    with build_state(tmp_path_factory.mktemp("online_served")) as (state, instance):
        demo = generate(state.data_dir, days=4, events_per_day=300, seed=11, end_date=today - dt.timedelta(days=1))
        first, last = demo["start_date"], demo["end_date"]
        earliest = min(demo["expected_clean_by_event_date"])
        runner = Runner(build_definitions(), instance, state.data_dir)
        for source in ("users", "products", "telemetry", "events"):
            runner.run(f"raw_{source}", range_=(first, last))
        runner.run("clean_users")
        runner.run("clean_products")
        runner.run("clean_telemetry", range_=(first, last))
        runner.run("clean_events", range_=(earliest, last))
        for view in VIEWS:
            runner.run(view, range_=(first, today.isoformat()))
        os.environ["ML_PLATFORM_REDIS_URL"] = redis_url
        try:
            state.value = run_metadata(runner.run("latest_features"), "latest_features")
        finally:
            del os.environ["ML_PLATFORM_REDIS_URL"]
    return state


@pytest.fixture
def store(redis_url):
    opened = RedisOnlineStore(redis_url)
    yield opened
    opened.close()


def _raw_ids(data_dir, table: str, column: str) -> list[str]:
    with connect(data_dir / "warehouse.duckdb", read_only=True) as con:
        return [
            r[0]
            for r in con.execute(
                f"SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL ORDER BY 1"
            ).fetchall()
        ]


def _features(view: str) -> list[str]:
    from ml_platform.training import feature_views

    return [f"{view}:{f}" for f in feature_views()[view].features]


@pytest.mark.parametrize("view", sorted(VIEWS))
def test_redis_answers_what_the_warehouse_answers(starting_state, data_dir, store, redis_url, view):
    table, column = VIEWS[view]
    entities = pd.DataFrame({column: [*_raw_ids(data_dir, table, column), "nobody"]})
    features = _features(view)
    at = store.now()
    from_redis = get_online_features(None, entities, features, at=at, store=store)
    with connect(data_dir / "warehouse.duckdb", read_only=True) as con:
        from_warehouse = get_online_features(con, entities, features, at=at, store=None)
        # Three days on, past every view's TTL: the warehouse serves nulls, and so does Redis,
        # whose keys are still there (the TTL applied on read).
        later = at + dt.timedelta(days=3)
        stale_in_warehouse = get_online_features(con, entities, features, at=later, store=None)
        newest = con.execute(f"SELECT count(*) FROM latest_{view}").fetchone()[0]

    pd.testing.assert_frame_equal(from_redis, from_warehouse, check_exact=True)
    # The ids as plain lists (what a model server has): the same frame, from either place.
    as_lists = {column: entities[column].tolist()}
    pd.testing.assert_frame_equal(get_online_features(None, as_lists, features, at=at, store=store), from_redis)
    with connect(data_dir / "warehouse.duckdb", read_only=True) as con:
        pd.testing.assert_frame_equal(get_online_features(con, as_lists, features, at=at, store=None), from_warehouse)
    stale_in_redis = get_online_features(None, entities, features, at=later, store=store)
    pd.testing.assert_frame_equal(stale_in_redis, stale_in_warehouse, check_exact=True)
    assert stale_in_redis[[f.split(":")[1] for f in features]].isna().all().all()
    # Not an empty comparison: most entities have values today, "nobody" has none.
    served = from_redis[features[0].split(":")[1]].notna()
    assert served.sum() > len(entities) // 2 and not served.iloc[-1]
    # One hash per entity the view knows, every one written by the serving asset.
    keys = redis.Redis.from_url(redis_url).keys(f"ml:{view}:*")
    assert len(keys) == newest == starting_state.value[f"online_{view}_rows_written"]
    assert starting_state.value[f"online_{view}_rows_kept_newer"] == 0


def test_the_configured_store_answers_without_a_warehouse(starting_state, data_dir, redis_url, monkeypatch):
    ids = _raw_ids(data_dir, "clean_events", "user_id")[:3]
    monkeypatch.setenv("ML_PLATFORM_REDIS_URL", redis_url)
    # No connection at all: the lookup needs only Redis (a run may hold the warehouse).
    served = get_online_features(None, pd.DataFrame({"user_id": ids}), ["user_activity:purchases"])
    assert served.columns.tolist() == ["user_id", "purchases"] and served["user_id"].tolist() == ids
    monkeypatch.delenv("ML_PLATFORM_REDIS_URL")
    with pytest.raises(ValueError, match="no online store is configured"):
        get_online_features(None, pd.DataFrame({"user_id": ids}), ["user_activity:purchases"])


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def _post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    return _get(request)


@pytest.fixture
def endpoint(store):
    server, thread = start_server(store)
    yield server.url
    server.shutdown()
    thread.join()
    server.server_close()


def test_the_endpoint_serves_one_entity(starting_state, data_dir, store, endpoint):
    user = _raw_ids(data_dir, "clean_events", "user_id")[0]
    features = ["user_activity:purchases", "user_activity:lifetime_value", "user_activity:plan"]
    status, body = _get(f"{endpoint}/features?features={','.join(features)}&user_id={user}")
    at = dt.datetime.fromisoformat(body["at"].removesuffix("Z"))
    expected = get_online_features(None, pd.DataFrame({"user_id": [user]}), features, at=at, store=store)

    assert status == 200 and body["features"] == features
    assert body["entities"] == [
        {
            "user_id": user,
            "user_activity:purchases": int(expected["purchases"][0]),
            "user_activity:lifetime_value": float(expected["lifetime_value"][0]),
            "user_activity:plan": None if pd.isna(expected["plan"][0]) else expected["plan"][0],
        }
    ]


def test_the_endpoint_serves_many_entities_of_several_views(starting_state, data_dir, store, endpoint):
    users = [*_raw_ids(data_dir, "clean_events", "user_id")[:40], "nobody"]
    product = _raw_ids(data_dir, "clean_products", "product_id")[0]
    features = ["user_activity:spend_7d", "product_features:price", "user_activity:country"]
    status, body = _post(
        f"{endpoint}/features",
        {"features": features, "entities": [{"user_id": u, "product_id": product} for u in users]},
    )
    at = dt.datetime.fromisoformat(body["at"].removesuffix("Z"))
    entities = pd.DataFrame({"user_id": users, "product_id": product})
    expected = get_online_features(None, entities, features, at=at, store=store)

    assert status == 200 and len(body["entities"]) == len(users)
    assert [e["user_id"] for e in body["entities"]] == users
    got = pd.DataFrame(
        [[e[name] for name in features] for e in body["entities"]], columns=["spend_7d", "price", "country"]
    )
    pd.testing.assert_frame_equal(
        got.astype(object).where(got.notna(), None),
        expected[["spend_7d", "price", "country"]]
        .astype(object)
        .where(expected[["spend_7d", "price", "country"]].notna(), None),
    )
    assert body["entities"][-1] == {"user_id": "nobody", "product_id": product} | {
        "user_activity:spend_7d": None,
        "product_features:price": body["entities"][0]["product_features:price"],
        "user_activity:country": None,
    }
    # The same as columns.
    _, columns = _post(
        f"{endpoint}/features",
        {"features": features, "entities": {"user_id": users, "product_id": [product] * len(users)}},
    )
    assert columns["entities"] == body["entities"]


def test_the_endpoint_says_what_is_wrong(starting_state, endpoint):
    assert _get(f"{endpoint}/features?features=user_activity:nope&user_id=u1") == (
        400,
        {
            "error": "'user_activity:nope': user_activity has no feature 'nope'; it has "
            + str(_features("user_activity")).replace("user_activity:", "")
        },
    )
    assert _get(f"{endpoint}/features?features=user_activity:purchases") == (
        400,
        {"error": "user_activity is keyed by ['user_id']: no ['user_id'] given"},
    )
    assert _get(f"{endpoint}/features?features=user_activity:purchases&userid=u1") == (
        400,
        {"error": "unknown parameter(s) ['userid']: the features asked for are keyed by ['user_id']"},
    )
    assert _get(f"{endpoint}/features?user_id=u1") == (400, {"error": "name the features: features=view:feature,..."})
    assert _post(f"{endpoint}/features", {"entities": []})[0] == 400
    assert _get(f"{endpoint}/nothing")[0] == 404


def test_the_endpoint_answers_503_naming_redis_when_it_is_down():
    port = free_port()
    server, thread = start_server(RedisOnlineStore(f"redis://127.0.0.1:{port}/0"))
    try:
        status, body = _get(f"{server.url}/features?features=user_activity:purchases&user_id=u1")
        health = _get(f"{server.url}/health")
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
    assert status == 503
    assert body["error"].startswith(
        f"the online store's Redis at redis://127.0.0.1:{port}/0 is unavailable (reading user_activity): "
    )
    assert health[0] == 503


def test_the_serve_command_runs_the_endpoint_and_refuses_without_redis(redis_url, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ML_PLATFORM_REDIS_URL"}
    refused = subprocess.run([sys.executable, "-m", "ml_platform", "serve"], env=env, capture_output=True, text=True)
    assert (refused.returncode, refused.stderr.strip()) == (
        2,
        "no online store: set ML_PLATFORM_REDIS_URL (e.g. redis://127.0.0.1:6379/0)",
    )
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ml_platform", "serve", "--port", str(port)],
        env=env | {"ML_PLATFORM_REDIS_URL": redis_url},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert (
            process.stdout.readline().strip()
            == f"online features on http://127.0.0.1:{port}/features (from {redis_url})"
        )
        status, body = _get(f"http://127.0.0.1:{port}/health")
        assert status == 200 and body["online_store"] == redis_url
        process.terminate()
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
        process.wait()


def test_the_serving_asset_keeps_a_newer_row_redis_already_holds(starting_state, data_dir, redis_url):
    """A real-time writer's newer row is not overwritten by the batch view's older one."""
    from ml_platform import privacy
    from ml_platform.online_store import OnlineRow
    from ml_platform.training import feature_views
    from ml_platform.training.serving_asset import write_newest_rows

    view = feature_views()["user_activity"]
    user = _raw_ids(data_dir, "clean_events", "user_id")[0]
    own_db = RedisOnlineStore(redis_url.removesuffix("/0") + "/1")  # the other tests' rows stay in db 0
    redis.Redis.from_url(redis_url.removesuffix("/0") + "/1").flushdb()
    now = own_db.now()
    newer = OnlineRow((privacy.pseudonym_of(user),), now, dict.fromkeys(view.features) | {"purchases": 999})
    own_db.write("user_activity", view.ttl, [newer])
    with connect(data_dir / "warehouse.duckdb", read_only=True) as con:
        entities = con.execute("SELECT count(DISTINCT user_id) FROM user_activity").fetchone()[0]
        written, kept = write_newest_rows(con, own_db, view, now)

    assert (written, kept) == (entities - 1, 1)
    assert own_db.read("user_activity", [newer.key], ["purchases"], view.ttl)[1] == [{"purchases": 999}]
