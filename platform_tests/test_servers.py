"""The development servers the platform starts itself: Redis (`demo/redis_server.py`) and the Kafka
broker (`demo/kafka_broker.py`), as `make dev` and the tests use them."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid

import redis

from kafka_server import shared_broker
from ml_platform.demo import kafka_broker
from ml_platform.demo.kafka_broker import CANNOT_RUN, new_broker
from ml_platform.demo.kafka_broker import missing_reason as kafka_missing
from ml_platform.demo.redis_server import CANNOT_RUN as REDIS_CANNOT_RUN
from ml_platform.demo.redis_server import redis_server


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not reaped) is not alive either.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


def test_redis_starts_on_a_free_port_restarts_and_stops_with_its_group(tmp_path):
    with redis_server() as server:
        client = redis.Redis.from_url(server.url)
        client.hset("entity:u1", mapping={"clicks_5m": 3})
        assert client.hgetall("entity:u1") == {b"clicks_5m": b"3"}
        assert server.url.startswith("redis://127.0.0.1:")
        pid = server.process.pid
        # Not persistent: a restarted test server starts empty.
        server.stop()
        assert not _alive(pid)
        server.start()
        assert redis.Redis.from_url(server.url).hgetall("entity:u1") == {}
        root = server.root
    assert not root.exists()


def test_the_kafka_broker_runs_from_the_projects_jars():
    assert kafka_missing() is None
    broker = shared_broker()
    assert broker.bootstrap == f"127.0.0.1:{broker.port}"
    assert broker.process.poll() is None
    # The command make dev runs says whether a broker can start here, without starting one.
    done = subprocess.run([sys.executable, "-m", "ml_platform.demo.kafka_broker", "--check"], capture_output=True)
    assert done.returncode == 0


def test_without_java_the_broker_command_says_why_the_stream_stays_idle(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}  # no java on it
    done = subprocess.run(
        [sys.executable, "-m", "ml_platform.demo.kafka_broker", "--check"], capture_output=True, text=True, env=env
    )
    assert done.returncode == CANNOT_RUN
    assert done.stderr.strip().startswith(
        "Kafka broker not started, the stream source stays idle: no Java on PATH: the Kafka broker needs Java 17+"
    )


def test_a_cluster_id_never_starts_with_a_dash_so_the_storage_tool_formats_every_new_cluster(tmp_path, monkeypatch):
    # One random id in 64 starts with "-" (first byte 0xF8-0xFB); the storage tool took it for an
    # option and refused to format ("argument --cluster-id/-t: expected one argument").
    dashed, plain = uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x01" * 16)
    assert base64.urlsafe_b64encode(dashed.bytes).decode().startswith("-")
    draws = iter([dashed, plain])
    monkeypatch.setattr(kafka_broker.uuid, "uuid4", lambda: next(draws))
    broker = new_broker(tmp_path / "cluster")
    broker.format()  # the real tool, as make dev and every test broker run it
    expected = base64.urlsafe_b64encode(plain.bytes).decode().rstrip("=")
    meta = (tmp_path / "cluster" / "logs" / "meta.properties").read_text().splitlines()
    assert f"cluster.id={expected}" in meta


def test_the_redis_command_says_whether_a_server_can_start_and_why_not(tmp_path):
    """What make dev asks before starting Redis: yes here; without redis-server, why the online store stays off."""
    check = [sys.executable, "-m", "ml_platform.demo.redis_server", "--check"]
    assert subprocess.run(check, capture_output=True).returncode == 0
    done = subprocess.run(check, capture_output=True, text=True, env={**os.environ, "PATH": str(tmp_path)})
    assert done.returncode == REDIS_CANNOT_RUN
    assert done.stderr.strip() == (
        "Redis not started: no redis-server on PATH (Debian: apt-get install redis-server, or `make system-deps` as root);"
        " the online store stays off and online lookups read the warehouse"
    )
