"""The blocking contract check every clean and curated table runs on what it just wrote.

It runs the table's Pandera model inside DuckDB (through ibis, nothing copied into pandas),
counts each row rule's failures exactly in SQL, and optionally fails when too large a share
of the input was quarantined. The result names each failing rule, its column, its failure
count and sample rows, so the UI says what broke without anyone opening the warehouse.
"""

from __future__ import annotations

import dagster as dg
import pandera.ibis as pa

from ml_platform.contracts import table_contract as tc
from ml_platform.warehouse import Warehouse

CONTRACT_CHECK = "contract"


def contract_check_spec(
    asset_key: dg.AssetKey, model: type[pa.DataFrameModel], partitions_def=None, extra: str = ""
) -> dg.AssetCheckSpec:
    """Partitioned like its asset, so one-partition runs record a result per partition.

    A single-run range backfill can store only one result, without a partition: it covers
    the whole range and lists per-partition figures in the materialization metadata.
    """
    return dg.AssetCheckSpec(
        partitions_def=partitions_def,
        name=CONTRACT_CHECK,
        asset=asset_key,
        blocking=True,
        description=f"Pandera contract {model.__name__} on the written partitions. {extra}".strip(),
    )


def evaluate_contract(
    warehouse: Warehouse,
    model: type[pa.DataFrameModel],
    relation_sql: str,
    quarantined: int = 0,
    rows_in_scope: int = 0,
    max_quarantine_fraction: float | None = None,
    quarantine_sql: str | None = None,
) -> dg.AssetCheckResult:
    """`quarantine_sql` selects the rows the write quarantined (rule, column_name, source_file,
    source_row, record), so a failure names the rules that sent rows there, with samples."""
    with warehouse.read() as con:
        rule_failures = tc.count_rule_failures(con, model, relation_sql)
        pandera = tc.pandera_failures(con, model, relation_sql)
        by_rule = _quarantined_by_rule(con, quarantine_sql) if quarantine_sql and quarantined else []
    fraction = quarantined / rows_in_scope if rows_in_scope else 0.0
    too_much_quarantined = max_quarantine_fraction is not None and fraction > max_quarantine_fraction
    passed = not rule_failures and not pandera and not too_much_quarantined
    metadata: dict = {
        "failing_rules": len(rule_failures) + len(pandera) + int(too_much_quarantined),
        "failing_rows": sum(f.failing_rows for f in rule_failures),
        "quarantined_rows": quarantined,
        "quarantined_fraction": round(fraction, 6),
    }
    if max_quarantine_fraction is not None:
        metadata["max_quarantined_fraction"] = max_quarantine_fraction
    if rule_failures:
        metadata["rule_failures"] = dg.MetadataValue.json(
            [{"rule": f.rule, "column": f.column, "failing_rows": f.failing_rows, "sample": f.sample} for f in rule_failures]
        )
    if pandera:
        metadata["pandera_failures"] = dg.MetadataValue.json(pandera)
    if by_rule:
        metadata["quarantined_by_rule"] = dg.MetadataValue.json(by_rule)
    failed = [f.rule for f in rule_failures] + [p["check"] for p in pandera]
    if too_much_quarantined:
        failed.append(f"quarantined_fraction<={max_quarantine_fraction}")
    metadata["failed"] = ", ".join(failed) if failed else "none"
    return dg.AssetCheckResult(
        check_name=CONTRACT_CHECK,
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata=metadata,
        description=None if passed else f"{model.__name__} broken: {metadata['failed']}",
    )


def _quarantined_by_rule(con, quarantine_sql: str) -> list[dict]:
    """Each quarantine rule with its column, row count and a few of its rows (file, row, record)."""
    rows = con.execute(
        f"""SELECT rule, any_value(column_name), count(*),
                   list({{'file': source_file, 'row': source_row, 'record': record::VARCHAR}}
                        ORDER BY source_file, source_row)[1:{tc.FAILURE_SAMPLE_SIZE}]
            FROM ({quarantine_sql}) GROUP BY rule ORDER BY count(*) DESC, rule"""
    ).fetchall()
    return [{"rule": r, "column": c, "rows": n, "sample": sample} for r, c, n, sample in rows]
