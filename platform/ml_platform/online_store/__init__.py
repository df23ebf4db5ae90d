"""The online store: each feature view's newest row per entity in Redis, for lookups in milliseconds.

`configured_store()` is the store `ML_PLATFORM_REDIS_URL` names, or None: then the warehouse's
feature views answer online lookups (the embedded default). Writers are the serving asset
(`training/serving_asset.py`, every batch view's newest rows) and the real-time feature transform;
readers are `get_online_features` and the HTTP endpoint (`python -m ml_platform serve`). The layout
is `layout`'s, the atomic write and read are `scripts`' Lua, and `RedisOnlineStore` ties them to a
server. This room knows nothing of views or the warehouse: callers pass names, keys, TTLs and rows.
"""

from __future__ import annotations

from ml_platform import settings
from ml_platform.online_store.layout import Value, hash_key
from ml_platform.online_store.redis_store import OnlineRow, OnlineStoreUnavailable, RedisOnlineStore, ViewRead

__all__ = [
    "OnlineRow",
    "OnlineStoreUnavailable",
    "RedisOnlineStore",
    "Value",
    "ViewRead",
    "configured_store",
    "hash_key",
]

_stores: dict[str, RedisOnlineStore] = {}


def configured_store() -> RedisOnlineStore | None:
    """The store at `ML_PLATFORM_REDIS_URL` (one per URL and process, its connection pool reused),
    or None when the variable is unset. Connects lazily: no Redis is needed to get one."""
    url = settings.redis_url()
    if url is None:
        return None
    if url not in _stores:
        _stores[url] = RedisOnlineStore(url)
    return _stores[url]
