"""Personal data in a contract: which columns hold it, and how curated tables must treat it.

A column is marked in its `Field`, `Field(..., metadata=personal.pseudonymized())` or
`metadata=personal.masked()`. In a clean table (the restricted layer, which keeps values as the
source sent them) the mark says what the column holds and how it must leave; in a curated table
it says what the writer does to it (`ml_platform.privacy`):

- `pseudonymize`: the value becomes a keyed hash of itself, the same for the same value under the
  same key: ids stay joinable across every curated table (user_id, e-mail used as a key);
- `mask`: the value becomes `***` (NULL stays NULL): nothing of it is kept but its presence (free
  text, IP addresses).

The UI's column schema shows the mark, and check samples and previews never show a marked
column's values.
"""

from __future__ import annotations

from functools import cache

import pandera.ibis as pa

from ml_platform.warehouse import sql

METADATA_KEY = "personal"
PSEUDONYMIZE = "pseudonymize"
MASK = "mask"
TREATMENTS = (PSEUDONYMIZE, MASK)
# What a masked value reads as, in curated tables and in every sample the UI shows.
MASKED_VALUE = sql.MASKED_VALUE


def pseudonymized() -> dict:
    """Field metadata marking a personal column that curated tables pseudonymize."""
    return {METADATA_KEY: PSEUDONYMIZE}


def masked() -> dict:
    """Field metadata marking a personal column that curated tables mask."""
    return {METADATA_KEY: MASK}


@cache
def personal_columns(model: type[pa.DataFrameModel]) -> dict[str, str]:
    """The model's personal columns and their treatment, in column order."""
    found = {}
    for name, column in model.to_schema().columns.items():
        treatment = (column.metadata or {}).get(METADATA_KEY)
        if treatment is None:
            continue
        if treatment not in TREATMENTS:
            raise ValueError(f"{model.__name__}.{name}: personal treatment {treatment!r} is not one of {TREATMENTS}")
        if str(column.dtype) != "string":
            # Both treatments produce text; a number or date would change type on the way.
            raise ValueError(f"{model.__name__}.{name}: only string columns can be marked personal")
        found[name] = treatment
    return found


def in_words(treatment: str) -> str:
    """How the UI's column constraints show the mark."""
    return f"personal data: {'pseudonymized' if treatment == PSEUDONYMIZE else 'masked'} in curated tables"
