"""How the online store lays rows out in Redis: key names, timestamps and typed values as strings.

One hash per (view, entity key), named `ml:<view>:<key part>[:<key part>...]`, each name part
percent-encoded (`urllib.parse.quote`, nothing kept safe), so a `:` or `%` inside an id cannot make
two keys meet and plain ids stay readable (`ml:user_activity:p_3f2a...`). The hash holds:

- `_ts`: the row's event timestamp, integer microseconds since the Unix epoch (UTC);
- `_created`: when Redis stored the row, its own `TIME` in microseconds;
- one field per feature, its value typed by a one-letter tag: `n` null, `b0`/`b1` a bool,
  `i<decimal>` an int, `f<repr>` a float (Python's repr: the shortest text that reads back to the
  same double, bit for bit; `inf`, `-inf`, `nan` included), `s<text>` a string.

Fields starting with `_` are the store's own, so a feature name may not start with one. A feature
missing from a hash (written before the view had it) reads as null.
"""

from __future__ import annotations

import datetime as dt
import numbers
from urllib.parse import quote

Value = int | float | str | bool | None

KEY_PREFIX = "ml"
TS_FIELD = "_ts"
CREATED_FIELD = "_created"
EPOCH = dt.datetime(1970, 1, 1)
_MICROSECOND = dt.timedelta(microseconds=1)


def hash_key(view: str, key: tuple[str, ...], prefix: str = KEY_PREFIX) -> str:
    """The Redis key of `view`'s row for entity `key`."""
    if not key:
        raise ValueError(f"{view}: an entity key needs at least one part")
    parts = [prefix, view, *key]
    for part in parts[1:]:
        if not isinstance(part, str):
            raise TypeError(f"{view}: entity key parts are strings, not {type(part).__name__} ({part!r})")
    return ":".join(quote(part, safe="") for part in parts)


def naive_utc(moment: dt.datetime) -> dt.datetime:
    """`moment` in UTC without tzinfo (a naive datetime is taken to be UTC already)."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


def to_micros(moment: dt.datetime) -> int:
    """Microseconds since the Unix epoch of `moment` (naive = UTC)."""
    return (naive_utc(moment) - EPOCH) // _MICROSECOND


def from_micros(micros: int | str | bytes) -> dt.datetime:
    """The naive UTC datetime of microseconds since the epoch."""
    return EPOCH + int(micros) * _MICROSECOND


def ttl_micros(ttl: dt.timedelta | None) -> int | None:
    return None if ttl is None else ttl // _MICROSECOND


def check_feature_name(view: str, name: str) -> None:
    if not isinstance(name, str) or not name or name.startswith("_"):
        raise ValueError(f"{view}: feature name {name!r} is empty or starts with '_' (the store's own fields)")


def encode(view: str, name: str, value: Value) -> str:
    """`value` as the tagged text stored in the hash; TypeError, naming the view and field, otherwise."""
    kind = type(value)  # the exact built-in types first: the common case, without abc checks
    if kind is float:
        return f"f{value!r}"
    if kind is str:
        return f"s{value}"
    if kind is int:
        return f"i{value}"
    if value is None:
        return "n"
    if isinstance(value, bool):
        return "b1" if value else "b0"
    if isinstance(value, numbers.Integral):
        return f"i{int(value)}"
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return f"f{float(value)!r}"
    if isinstance(value, str):
        return f"s{value}"
    raise TypeError(f"{view}.{name}: the online store keeps int, float, str, bool or None, not {type(value).__name__}")


def decode(stored: str | bytes | bool | None) -> Value:
    """The value of a stored field, as text or bytes (None, or the read script's false, for a
    missing field)."""
    if stored is None or stored is False:
        return None
    if isinstance(stored, bytes):
        stored = stored.decode()
    tag, text = stored[:1], stored[1:]
    if tag == "s":
        return text
    if tag == "f":
        return float(text)
    if tag == "i":
        return int(text)
    if tag == "b":
        return text == "1"
    if tag == "n":
        return None
    raise ValueError(f"not a value the online store wrote: {stored[:40]!r}")
