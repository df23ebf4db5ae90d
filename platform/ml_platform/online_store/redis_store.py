"""`RedisOnlineStore`: write a view's newest rows, read feature vectors as of a time, one round trip each.

    store = RedisOnlineStore("redis://127.0.0.1:6379/0")
    created = store.write("user_activity", dt.timedelta(days=2), [OnlineRow(("p_3f..",), ts, {"purchases": 2})])
    at, vectors = store.read("user_activity", [("p_3f..",)], ["purchases"], dt.timedelta(days=2))

Ordering is by event time, decided inside Redis (`scripts.WRITE`): an older row never replaces a
newer one, whatever order writers arrive in; an equal one replaces it (a correction). Every stamp
comes from one clock, Redis's `TIME`: the created stamp of a write and the lookup time of a read,
so "was this value written before that lookup?" compares two readings of the same clock, never a
writer's clock with a reader's. The created stamps come back so a writer can record the very same
time in the warehouse. The layout is `layout`'s; the TTL is applied on read (a value older than
`at - ttl` is null even while its key lives), and keys expire `expire_margin` after `ts + ttl` so
Redis does not keep what nobody may read.

Times in and out are naive UTC datetimes (an aware one is converted). A Redis that cannot be
reached raises `OnlineStoreUnavailable`, naming the server (never its password).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ml_platform.online_store import layout, scripts
from ml_platform.online_store.layout import Value

# How long after a row's ts + ttl its key is kept: lookups at a time somewhat in the past (a replay,
# a consistency check) still find it, and Redis still forgets it in the end.
DEFAULT_EXPIRE_MARGIN = dt.timedelta(hours=1)
# Rows per WRITE script: Redis runs one script at a time, so a huge batch would stall every reader;
# a write of more rows is several scripts, each atomic, sent in one pipeline.
ROWS_PER_SCRIPT = 1000
T = TypeVar("T")


class OnlineStoreUnavailable(RuntimeError):
    """The online store's Redis could not be reached (down, refusing, timing out)."""


@dataclass(frozen=True)
class OnlineRow:
    """One entity's feature values as of `ts` (naive = UTC)."""

    key: tuple[str, ...]
    ts: dt.datetime
    values: Mapping[str, Value]


@dataclass(frozen=True)
class ViewRead:
    """What to read of one view: entity keys and features, with the view's TTL."""

    view: str
    keys: Sequence[tuple[str, ...]]
    features: Sequence[str]
    ttl: dt.timedelta | None


def redacted(url: str) -> str:
    """`url` without its user name and password: safe to show."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


class RedisOnlineStore:
    def __init__(
        self,
        url: str,
        *,
        expire_margin: dt.timedelta = DEFAULT_EXPIRE_MARGIN,
        rows_per_script: int = ROWS_PER_SCRIPT,
        socket_timeout: float = 5.0,
    ):
        self.location = redacted(url)
        self.expire_margin = expire_margin
        self.rows_per_script = rows_per_script
        # One immediate retry: a pooled connection broken by a Redis restart is replaced once;
        # a Redis that is down fails at once instead of after backoff.
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=min(socket_timeout, 1.0),
            retry=Retry(NoBackoff(), 1),
        )
        self._write = self._client.register_script(scripts.WRITE)
        self._read = self._client.register_script(scripts.READ)

    def __repr__(self) -> str:
        return f"RedisOnlineStore({self.location!r})"

    def close(self) -> None:
        self._client.close()

    def _call(self, what: str, function: Callable[[], T]) -> T:
        try:
            return function()
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise OnlineStoreUnavailable(
                f"the online store's Redis at {self.location} is unavailable ({what}): {error}"
            ) from error

    def now(self) -> dt.datetime:
        """Redis's clock (`TIME`), naive UTC."""
        seconds, micros = self._call("TIME", self._client.time)
        return layout.from_micros(seconds * 1_000_000 + micros)

    def write(self, view: str, ttl: dt.timedelta | None, rows: Iterable[OnlineRow]) -> list[dt.datetime | None]:
        """Store each row unless its key holds a newer one (see the module docstring). Returns, per
        row in order, its created stamp (Redis `TIME` at the write), or None when it was ignored."""
        argument_rows = [(layout.hash_key(view, row.key), self._row_arguments(view, ttl, row)) for row in rows]
        chunks = [
            argument_rows[i : i + self.rows_per_script] for i in range(0, len(argument_rows), self.rows_per_script)
        ]

        def send() -> list:
            if len(chunks) == 1:
                return [self._write(keys=[k for k, _ in chunks[0]], args=[a for _, args in chunks[0] for a in args])]
            pipe = self._client.pipeline(transaction=False)
            for chunk in chunks:
                self._write(keys=[k for k, _ in chunk], args=[a for _, args in chunk for a in args], client=pipe)
            return pipe.execute()

        replies = self._call(f"writing {view}", send) if chunks else []
        return [None if stamp is None else layout.from_micros(stamp) for reply in replies for stamp in reply]

    def _row_arguments(self, view: str, ttl: dt.timedelta | None, row: OnlineRow) -> list:
        ts = layout.to_micros(row.ts)
        expire_at = ""
        if ttl is not None:
            expire_at = (ts + layout.ttl_micros(ttl + self.expire_margin)) // 1000
        pairs: list[str] = []
        for name, value in row.values.items():
            layout.check_feature_name(view, name)
            pairs += [name, layout.encode(view, name, value)]
        return [ts, expire_at, json.dumps(pairs, ensure_ascii=False)]

    def read(
        self,
        view: str,
        keys: Sequence[tuple[str, ...]],
        features: Sequence[str],
        ttl: dt.timedelta | None,
        *,
        at: dt.datetime | None = None,
    ) -> tuple[dt.datetime, list[dict[str, Value]]]:
        """The lookup time (Redis `TIME`, or `at`) and, per key in order, each feature's value then:
        null for a missing entity, a value older than `at - ttl`, or a row stamped after `at`."""
        at, (vectors,) = self.read_views([ViewRead(view, keys, features, ttl)], at=at)
        return at, vectors

    def read_views(
        self, reads: Sequence[ViewRead], *, at: dt.datetime | None = None
    ) -> tuple[dt.datetime, list[list[dict[str, Value]]]]:
        """Several views' `read`s in one script, at one lookup time: the time, then per read its vectors."""
        keys: list[str] = []
        args: list = ["" if at is None else layout.to_micros(at)]
        for request in reads:
            for name in request.features:
                layout.check_feature_name(request.view, name)
            keys += [layout.hash_key(request.view, key) for key in request.keys]
            ttl = layout.ttl_micros(request.ttl)
            args += [len(request.keys), "" if ttl is None else ttl, len(request.features), *request.features]
        reply = self._call("reading " + ", ".join(r.view for r in reads), lambda: self._read(keys=keys, args=args))
        reply = json.loads(reply)
        looked_up, groups = layout.from_micros(reply[0]), reply[1:]
        return looked_up, [
            [
                dict.fromkeys(request.features)
                if row is False
                else {name: layout.decode(value) for name, value in zip(request.features, row[1:], strict=True)}
                for row in rows
            ]
            for request, rows in zip(reads, groups, strict=True)
        ]
