"""The blocking `privacy` check of every curated table: no raw personal value in what a run wrote.

The writer pseudonymizes or masks the columns a curated contract marks personal
(`ml_platform.privacy`). This check proves it held, whatever the SQL did: in the run's window, it
counts the rows of each text column whose value

- equals a raw value of a personal column of a clean table (the restricted layer: user ids as
  the sources sent them), a raw id copied into any column, marked or not; or
- in a marked column, is not what the treatment gives (a pseudonym's `p_` and 32 hex digits,
  or the mask `***`).

Set-based: the window's distinct text values are semi-joined with the clean personal columns
(their scan reads one column), then each row is tested against the few matches. Every count is
0 or the check fails (ERROR, blocking: the partition's downstream waits until a corrected run
replaces the window). The metadata says what was compared; no value is shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import dagster as dg
import pandera.ibis as pa

from ml_platform.contracts import personal
from ml_platform.contracts import table_contract as tc
from ml_platform.contracts.writer import ContractTable, table_exists
from ml_platform.dagster_previews import acknowledged
from ml_platform.results import Verdict
from ml_platform.warehouse import Warehouse, sql
from ml_platform.warehouse.sql import DateWindow

PRIVACY_CHECK = "privacy"
# Clean table -> its personal columns: where raw personal values live (`raw_personal_columns`).
RawPersonal = Mapping[str, Sequence[str]]


def raw_personal_columns(contracts: Mapping[str, type[pa.DataFrameModel]]) -> dict[str, tuple[str, ...]]:
    """The personal columns of each clean table (by table name) that has any."""
    found = {table: tuple(personal.personal_columns(model)) for table, model in contracts.items()}
    return {table: columns for table, columns in found.items() if columns}


def privacy_check_spec(asset_key: dg.AssetKey, partitions_def=None) -> dg.AssetCheckSpec:
    with acknowledged("partitions_def on an AssetCheckSpec"):
        return dg.AssetCheckSpec(
            partitions_def=partitions_def,
            name=PRIVACY_CHECK,
            asset=asset_key,
            blocking=True,
            description=(
                "No raw personal value in the written partitions: no text value equals one of the clean layer's "
                "personal columns, and marked columns hold only pseudonyms or masks."
            ),
        )


def evaluate_privacy(
    warehouse: Warehouse, table: ContractTable, window: DateWindow, partitions: list[str], raw: RawPersonal
) -> tuple[Verdict, dict[str, Verdict]]:
    """The run's verdict and, when it wrote several partitions, each partition's."""
    texts = [c.name for c in tc.columns(table.contract) if c.duckdb_type == "VARCHAR"]
    with warehouse.read() as con:
        sources = [(t, c) for t, columns in raw.items() if table_exists(con, t) for c in columns]
        counts = _leaks_per_partition(con, table, window, texts, sources) if texts else {}
    compared = ", ".join(f"{t}.{c}" for t, c in sources) or "no clean personal column yet"
    per_column = {c: sum(day[i] for day in counts.values()) for i, c in enumerate(texts)}
    run = _verdict(table.name, texts, per_column, compared)
    per_partition = {}
    if len(partitions) > 1:
        per_partition = {
            p: _verdict(table.name, texts, dict(zip(texts, counts.get(p, [0] * len(texts)), strict=True)), compared)
            for p in partitions
        }
    return run, per_partition


def _leaks_per_partition(
    con, table: ContractTable, window: DateWindow, texts: list[str], sources: list[tuple[str, str]]
) -> dict[str, tuple[int, ...]]:
    """Per partition key, the count of unprotected rows of each text column."""
    marked = personal.personal_columns(table.contract)
    day = f"strftime({sql.ident(table.partition_column)}, '%Y-%m-%d')"
    values = " UNION ALL ".join(f"SELECT {sql.ident(c)} AS v FROM __rows" for c in texts)
    raw = " UNION ".join(
        f"SELECT s.{sql.ident(c)} AS v FROM {sql.ident(t)} s SEMI JOIN __values x ON s.{sql.ident(c)} = x.v"
        for t, c in sources
    )
    tests = []
    for column in texts:
        col = sql.ident(column)
        unprotected = {
            personal.PSEUDONYMIZE: f" OR NOT {sql.pseudonym_shape(col)}",
            personal.MASK: f" OR {col} <> {sql.literal(personal.MASKED_VALUE)}",
        }.get(marked.get(column), "")
        tests.append(f"count(*) FILTER (WHERE {col} IN (SELECT v FROM __raw){unprotected}) AS {col}")
    rows = con.execute(
        f"""WITH __rows AS (SELECT {day} AS __partition, {sql.columns_list(texts)} FROM {sql.ident(table.name)}
                            WHERE {table.scope(window)}),
                 __values AS (SELECT DISTINCT v FROM ({values}) WHERE v IS NOT NULL),
                 __raw AS ({raw or "SELECT CAST(NULL AS VARCHAR) AS v WHERE FALSE"})
            SELECT __partition, {", ".join(tests)} FROM __rows GROUP BY 1"""
    ).fetchall()
    return {row[0]: tuple(int(n) for n in row[1:]) for row in rows}


def _verdict(table: str, texts: list[str], per_column: dict[str, int], compared: str) -> Verdict:
    leaking = {c: n for c, n in per_column.items() if n}
    total = sum(leaking.values())
    metadata = {
        "raw_personal_values": total,
        "columns_checked": ", ".join(texts) or "none",
        "compared_with": compared,
    }
    if leaking:
        metadata["rows_per_column"] = dg.MetadataValue.json(leaking)
        found = ", ".join(f"{c} ({n} rows)" for c, n in leaking.items())
        return Verdict(passed=False, metadata=metadata, description=f"{table}: raw personal values in {found}")
    return Verdict(passed=True, metadata=metadata, description=f"{table}: no raw personal value")
