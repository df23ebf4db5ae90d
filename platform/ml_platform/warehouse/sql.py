"""The one place SQL text is built from names and values.

Everything the platform writes into SQL that is not a fixed keyword comes through these helpers:
identifiers are always quoted, values always become typed literals, JSON keys always become
quoted JSON paths. One parameter style: values are rendered as literals by `literal` (so a
composed query can be handed to ibis, logged or nested as one string), and bulk row data goes
through DuckDB's `?` placeholders in `executemany`. The same quoting rules hold for PostgreSQL
(standard-conforming strings), so the PostgreSQL source's pushed-down queries use them too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from string import Template

DateWindow = tuple[dt.date, dt.date]  # inclusive first and last day


def window_days(window: DateWindow) -> list[dt.date]:
    """Every day of the window, first to last."""
    return [window[0] + dt.timedelta(days=i) for i in range((window[1] - window[0]).days + 1)]


# Offsets such as Z, +05:30, -0800 or +09 at the end of an ISO timestamp.
UTC_OFFSET_PATTERN = r"(Z|z|[+-]\d{2}(:?\d{2})?)$"


def ident(name: str) -> str:
    """A quoted identifier: `"name"`, embedded quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def qualified(*parts: str) -> str:
    """A quoted dotted name: `"schema"."table"`."""
    return ".".join(ident(p) for p in parts)


def literal(value) -> str:
    """A typed SQL literal for a Python value (str, bool, int, float, date, datetime, None, list)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dt.datetime):
        text = value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
        return f"TIMESTAMP {_string(text.isoformat(sep=' '))}"
    if isinstance(value, dt.date):
        return f"DATE {_string(value.isoformat())}"
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    raise TypeError(f"no SQL literal for {type(value).__name__}")


def _string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def string_list(values: Iterable[str]) -> str:
    """A VARCHAR[] literal, typed even when empty."""
    return f"{literal(list(values))}::VARCHAR[]"


def json_path(key: str) -> str:
    """The JSON path literal of one top-level key, quoted so any key name is safe: `'$."a b"'`."""
    return literal('$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"')


def json_text(record: str, key: str) -> str:
    """Text of one top-level key of a JSON column (NULL when absent or JSON null)."""
    return f"json_extract_string({record}, {json_path(key)})"


def in_window(column: str, window: DateWindow | None, *, table_alias: str | None = None) -> str:
    """`column` (of `table_alias`, if given) within the inclusive date window; TRUE for no window."""
    if window is None:
        return "TRUE"
    target = f"{table_alias}.{ident(column)}" if table_alias else ident(column)
    return f"{target} BETWEEN {literal(window[0])} AND {literal(window[1])}"


def columns_list(names: Sequence[str]) -> str:
    """Quoted, comma-separated column names."""
    return ", ".join(ident(n) for n in names)


def utc_timestamp(text: str, zone: str) -> str:
    """Text -> naive UTC TIMESTAMP; an explicit offset wins, otherwise `zone` applies.

    Unparsable text and non-finite values ('infinity') give NULL, so the caller can tell an
    unreadable time (text present, result NULL) from a missing one.
    """
    with_offset = f"timezone('UTC', TRY_CAST({text} AS TIMESTAMPTZ))"
    without = f"timezone('UTC', timezone({literal(zone)}, TRY_CAST({text} AS TIMESTAMP)))"
    parsed = f"CASE WHEN regexp_matches({text}, {literal(UTC_OFFSET_PATTERN)}) THEN {with_offset} ELSE {without} END"
    return f"(CASE WHEN isfinite({parsed}) THEN {parsed} END)"


def utc_iso(value: dt.datetime | None) -> str | None:
    """UTC ISO text with microseconds, e.g. 2026-03-01T08:00:00.000000Z (naive means UTC)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def timestamptz_literal(value: dt.datetime) -> str:
    """A TIMESTAMPTZ literal in UTC (for PostgreSQL and DuckDB alike)."""
    return f"TIMESTAMPTZ {literal(utc_iso(value))}"


def render(template: str, **values) -> str:
    """A SQL template with `$name` placeholders, each value rendered by `literal`.

    Curated tables keep their SQL as a template (`WHERE event_date BETWEEN $start AND $end`), so
    the query text stays readable SQL and every value still goes through one quoting path.
    """
    return Template(template).substitute({name: literal(value) for name, value in values.items()})


# The HMAC-SHA256 key pads (key XOR ipad, key XOR opad) live in session variables of the
# connection (`bind_variable`), so no SQL text, log line or error message ever holds the key.
PSEUDONYM_INNER_PAD = "ml_platform_pseudonym_inner_pad"
PSEUDONYM_OUTER_PAD = "ml_platform_pseudonym_outer_pad"
PSEUDONYM_PREFIX = "p_"
PSEUDONYM_HEX_DIGITS = 32  # 128 bits of the 256: see `ml_platform.privacy` for why that is enough
MASKED_VALUE = "***"


def bind_variable(name: str) -> str:
    """The statement setting a session variable to the one `?` parameter it is executed with."""
    return f"SET VARIABLE {ident(name)} = ?"


def _pad(name: str) -> str:
    # A connection without a bound key must fail, not pseudonymize everything to NULL. Typed: an
    # unset variable is an untyped NULL, which the optimizer would fold the whole hash into.
    value = f"CAST(getvariable({literal(name)}) AS BLOB)"
    message = literal("no pseudonym key is bound to this connection (ml_platform.privacy.bind_key)")
    return f"(CASE WHEN {value} IS NULL THEN CAST(error({message}) AS BLOB) ELSE {value} END)"


def pseudonym(expr: str) -> str:
    """The pseudonym of text `expr`: 'p_' and the first 32 hex digits of HMAC-SHA256(key, UTF-8
    of the text), the key being the one bound to the connection; NULL stays NULL. Set-based: DuckDB
    hashes each row, HMAC(k, m) = sha256((k ^ opad) || sha256((k ^ ipad) || m))."""
    inner = f"unhex(sha256({_pad(PSEUDONYM_INNER_PAD)} || encode(CAST({expr} AS VARCHAR))))"
    return (
        f"({literal(PSEUDONYM_PREFIX)} || left(sha256({_pad(PSEUDONYM_OUTER_PAD)} || {inner}), {PSEUDONYM_HEX_DIGITS}))"
    )


def pseudonym_shape(expr: str) -> str:
    """True when text `expr` has the form of a pseudonym (NULL for NULL)."""
    return f"regexp_full_match({expr}, {literal(PSEUDONYM_PREFIX + '[0-9a-f]{' + str(PSEUDONYM_HEX_DIGITS) + '}')})"


def masked(expr: str) -> str:
    """`expr` masked: '***' for a value, NULL for NULL; nothing of the value is kept."""
    return f"(CASE WHEN {expr} IS NULL THEN NULL ELSE {literal(MASKED_VALUE)} END)"


def json_masked_keys(record: str, keys: Sequence[str]) -> str:
    """JSON `record` with the value of each of its top-level `keys` that it has replaced by '***'."""
    for key in keys:
        patch = f"json_object({literal(key)}, {literal(MASKED_VALUE)})"
        record = f"(CASE WHEN json_exists({record}, {json_path(key)}) THEN json_merge_patch({record}, {patch}) ELSE {record} END)"
    return record


def copy_to_parquet(select_sql: str, url: str) -> str:
    """SQL: write a SELECT's rows to one Parquet file at `url` (a path or an s3:// URL), replacing it."""
    return f"COPY ({select_sql}) TO {literal(url)} (FORMAT parquet, COMPRESSION zstd)"
