"""Personal data on the way to curated tables: pseudonymized with a keyed hash, or masked.

The clean layer is the restricted layer: it keeps what sources sent, user ids included. Every
curated table (features, feature views, labels, and what is built from them: training sets,
models, the serving tables) holds a contract's personal columns (`contracts.personal`) only
pseudonymized or masked, because its writer (`CuratedTable.write`) puts them through `protect`
on the way in. One key for all: the same id gets the same pseudonym in every curated table, so
they all join with each other, with the labels and in training sets, as the ids did.

The pseudonym is HMAC-SHA256 under the key `ML_PLATFORM_PSEUDONYM_KEY`, computed set-based in
DuckDB (`warehouse.sql.pseudonym`): 'p_' and the first 32 hex digits. `pseudonym_of` computes the
same text in Python for one id, for online lookups that must not open the warehouse. A plain hash would not do
(anyone can hash every possible user id and reverse it); without the key nobody can. 128 bits:
among a billion distinct ids, two share a pseudonym with probability about n^2 / 2^129 < 10^-20,
and half the digits of the whole hash make the keys of every join and index half as long.

The key reaches DuckDB as a bound parameter, into session variables of the one connection
(`bind_key`): it is in no SQL text, log line, error message or Dagster metadata. A curated
run that must pseudonymize and finds no key fails, naming the variable. A different key gives
different pseudonyms: see docs/privacy.md for rotating it.

Curated SQL reads the clean layer, raw ids and all, and joins on them; only what it writes is
pseudonymized. A curated table reading another one's pseudonymized column would hash it a second
time (and no longer join): it reads the clean table instead.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

import duckdb
import pandas as pd
import pandera.ibis as pa

from ml_platform import settings
from ml_platform.contracts import personal
from ml_platform.warehouse import sql

KEY_VARIABLE = "ML_PLATFORM_PSEUDONYM_KEY"
# A shorter key could be found by trying keys against one known (id, pseudonym) pair.
MIN_KEY_LENGTH = 32
_BLOCK = 64  # SHA-256's block size: HMAC pads its key to it


class PseudonymKeyError(RuntimeError):
    """No usable pseudonym key in the environment (unset, or too short)."""


def configured_key() -> str:
    """The key from the environment; raises PseudonymKeyError, naming the variable, without a usable one."""
    key = settings.pseudonym_key()
    if key is None:
        raise PseudonymKeyError(
            f"{KEY_VARIABLE} is not set: curated tables pseudonymize personal columns with this secret key. "
            f"Set it to a random string of at least {MIN_KEY_LENGTH} characters (`make dev` creates one under "
            "DAGSTER_HOME); see docs/privacy.md."
        )
    if len(key) < MIN_KEY_LENGTH:
        raise PseudonymKeyError(f"{KEY_VARIABLE} is too short: use at least {MIN_KEY_LENGTH} random characters.")
    return key


def key_pads(key: str) -> tuple[bytes, bytes]:
    """HMAC's inner and outer key pads of `key` (RFC 2104: a key longer than a block is hashed first)."""
    raw = key.encode()
    if len(raw) > _BLOCK:
        raw = hashlib.sha256(raw).digest()
    raw = raw.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in raw), bytes(b ^ 0x5C for b in raw)


def bind_key(con: duckdb.DuckDBPyConnection) -> None:
    """Make `sql.pseudonym` usable on `con`: the key's pads as session variables (parameters)."""
    inner, outer = key_pads(configured_key())
    con.execute(sql.bind_variable(sql.PSEUDONYM_INNER_PAD), [inner])
    con.execute(sql.bind_variable(sql.PSEUDONYM_OUTER_PAD), [outer])


def protect(con: duckdb.DuckDBPyConnection, model: type[pa.DataFrameModel], select_sql: str) -> str:
    """`select_sql`'s rows with `model`'s personal columns pseudonymized or masked (the key bound to
    `con` when a column needs it); unchanged when the model marks none."""
    marked = personal.personal_columns(model)
    if not marked:
        return select_sql
    if personal.PSEUDONYMIZE in marked.values():
        bind_key(con)
    replaced = ", ".join(
        f"{sql.pseudonym(sql.ident(c)) if how == personal.PSEUDONYMIZE else sql.masked(sql.ident(c))} AS {sql.ident(c)}"
        for c, how in marked.items()
    )
    return f"SELECT * REPLACE ({replaced}) FROM ({select_sql})"


def pseudonym_of(raw: object, key: str | None = None) -> str | None:
    """The pseudonym of one id, computed in Python (no warehouse needed): the same text as
    `sql.pseudonym` gives in DuckDB for the same key (default: the configured one), None for None.
    Non-text ids are hashed as their text, as DuckDB's CAST to VARCHAR writes them for ints."""
    if raw is None:
        return None
    digest = hmac.new((key or configured_key()).encode(), str(raw).encode(), hashlib.sha256).hexdigest()
    return sql.PSEUDONYM_PREFIX + digest[: sql.PSEUDONYM_HEX_DIGITS]


def pseudonymized(model: type[pa.DataFrameModel], columns: Iterable[str]) -> tuple[str, ...]:
    """Which of `columns` `model` pseudonymizes (e.g. a view's entity keys)."""
    marked = personal.personal_columns(model)
    return tuple(c for c in columns if marked.get(c) == personal.PSEUDONYMIZE)


def with_pseudonyms(select_sql: str, columns: Iterable[str]) -> str:
    """`select_sql`'s rows with `columns` (raw ids: a serving caller's, a clean table's) replaced by
    their pseudonyms, to meet curated rows; run it on a connection the key is bound to (`bind_key`)."""
    columns = list(columns)
    return f"SELECT {_pseudonymized_list(columns)} FROM ({select_sql})" if columns else select_sql


def _pseudonymized_list(columns: list[str]) -> str:
    return "* REPLACE (" + ", ".join(f"{sql.pseudonym(sql.ident(c))} AS {sql.ident(c)}" for c in columns) + ")"


def pseudonym_map(con: duckdb.DuckDBPyConnection, table: str, column: str) -> str:
    """SELECT of each distinct raw id of `table`.`column` (`__raw`) with its pseudonym
    (`__pseudonym`): curated rows meet clean rows through it, each id hashed once; binds the key."""
    bind_key(con)
    ids = f"SELECT DISTINCT {sql.ident(column)} AS __raw FROM {sql.ident(table)} WHERE {sql.ident(column)} IS NOT NULL"
    return f"SELECT __raw, {sql.pseudonym('__raw')} AS __pseudonym FROM ({ids})"


def pseudonymize(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """`frame` with `columns` (ids as a caller knows them) replaced by their pseudonyms, rows in
    order: what to look up in curated tables by. Hashed in DuckDB, set-based; binds the key."""
    columns = list(columns)
    if not columns:
        return frame
    bind_key(con)
    # DuckDB keeps a projection's rows in input order (preserve_insertion_order).
    return con.from_df(frame).project(_pseudonymized_list(columns)).df()
