"""The blocking `contract` check every clean and curated table runs on what it just wrote.

It runs the table's Pandera model inside DuckDB (through ibis, nothing copied into pandas),
counts each row rule's failures exactly in SQL, and, for clean tables, fails when too large a
share of the input was quarantined. The result names each failing rule, its column, its failure
count and sample rows, so the UI says what broke without anyone opening the warehouse.

A run gets one verdict for everything it wrote, and a range run also one verdict per partition
(rule counts per partition in one grouped scan, the quarantined share per partition): those are
what gate each partition's downstream. Pandera's table-level findings (types, columns,
uniqueness) cannot be attributed to one partition, so they fail every partition of the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg
import pandera.ibis as pa

from ml_platform.contracts import personal
from ml_platform.contracts import table_contract as tc
from ml_platform.contracts.writer import ContractTable
from ml_platform.dagster_previews import acknowledged
from ml_platform.results import CheckOutcome, Verdict, publish
from ml_platform.warehouse import Warehouse, sql
from ml_platform.warehouse.sql import DateWindow

CONTRACT_CHECK = "contract"
QUARANTINE_PARTITION_COLUMN = "partition_date"


def contract_check_spec(
    asset_key: dg.AssetKey, model: type[pa.DataFrameModel], partitions_def=None, extra: str = ""
) -> dg.AssetCheckSpec:
    """Partitioned like its asset: every partition gets its own result, in one-partition runs and
    (through per-partition evaluations) in single-run range backfills."""
    with acknowledged("partitions_def on an AssetCheckSpec"):
        return dg.AssetCheckSpec(
            partitions_def=partitions_def,
            name=CONTRACT_CHECK,
            asset=asset_key,
            blocking=True,
            description=f"Pandera contract {model.__name__} on the written partitions. {extra}".strip(),
        )


@dataclass(frozen=True)
class QuarantineFigures:
    """What a clean write routed to quarantine, per partition key (None: an unpartitioned table)."""

    table: str
    max_fraction: float
    quarantined: dict[str | None, int]
    rows_in_scope: dict[str | None, int]  # rows the partition owns: accepted, quarantined, duplicates, deleted


def evaluate_contract(
    warehouse: Warehouse,
    table: ContractTable,
    window: DateWindow | None,
    partitions: list[str],
    quarantine: QuarantineFigures | None = None,
) -> tuple[Verdict, dict[str, Verdict]]:
    """The run's verdict and, when the run wrote several partitions, each partition's."""
    relation = table.relation(window)
    quarantine_relation = None
    if quarantine is not None:
        quarantine_relation = (
            f"SELECT * FROM {sql.ident(quarantine.table)} WHERE {sql.in_window(QUARANTINE_PARTITION_COLUMN, window)}"
        )
    with warehouse.read() as con:
        rule_failures = tc.count_rule_failures(con, table.contract, relation)
        pandera = tc.pandera_failures(con, table.contract, relation)
        quarantined_total = sum(quarantine.quarantined.values()) if quarantine else 0
        by_rule = []
        if quarantine_relation and quarantined_total:
            by_rule = _quarantined_by_rule(con, quarantine_relation, tuple(personal.personal_columns(table.contract)))
        per_partition = {}
        if len(partitions) > 1:
            per_partition = _partition_verdicts(con, table, window, partitions, pandera, quarantine)
    run = _verdict(
        table.contract,
        [
            {"rule": f.rule, "column": f.column, "failing_rows": f.failing_rows, "sample": f.sample}
            for f in rule_failures
        ],
        pandera,
        quarantined_total,
        sum(quarantine.rows_in_scope.values()) if quarantine else 0,
        quarantine.max_fraction if quarantine else None,
        by_rule,
    )
    return run, per_partition


def _verdict(
    model,
    rule_failures: list[dict],
    pandera: list[dict],
    quarantined: int,
    rows_in_scope: int,
    max_fraction: float | None,
    by_rule: list[dict],
) -> Verdict:
    fraction = quarantined / rows_in_scope if rows_in_scope else 0.0
    too_much_quarantined = max_fraction is not None and fraction > max_fraction
    passed = not rule_failures and not pandera and not too_much_quarantined
    metadata: dict = {
        "failing_rules": len(rule_failures) + len(pandera) + int(too_much_quarantined),
        "failing_rows": sum(f["failing_rows"] for f in rule_failures),
        "quarantined_rows": quarantined,
        "quarantined_fraction": round(fraction, 6),
    }
    if max_fraction is not None:
        metadata["max_quarantined_fraction"] = max_fraction
    if rule_failures:
        metadata["rule_failures"] = dg.MetadataValue.json(rule_failures)
    if pandera:
        metadata["pandera_failures"] = dg.MetadataValue.json(pandera)
    if by_rule:
        metadata["quarantined_by_rule"] = dg.MetadataValue.json(by_rule)
    failed = [f["rule"] for f in rule_failures] + [p["check"] for p in pandera]
    if too_much_quarantined:
        failed.append(f"quarantined_fraction<={max_fraction}")
    metadata["failed"] = ", ".join(failed) if failed else "none"
    return Verdict(
        passed=passed,
        metadata=metadata,
        description=None if passed else f"{model.__name__} broken: {metadata['failed']}",
    )


def _partition_verdicts(
    con,
    table: ContractTable,
    window: DateWindow,
    partitions: list[str],
    pandera: list[dict],
    quarantine: QuarantineFigures | None,
) -> dict[str, Verdict]:
    """Each partition's verdict from one grouped scan of the rules and one of the quarantine."""
    rules = tc.row_rules(table.contract)
    day = f"strftime({sql.ident(table.partition_column)}, '%Y-%m-%d')"
    counts: dict[str, tuple] = {}
    if rules:
        filters = ", ".join(f"count(*) FILTER (WHERE {r.violation})" for r in rules)
        counts = {
            row[0]: row[1:]
            for row in con.execute(f"SELECT {day}, {filters} FROM ({table.relation(window)}) GROUP BY 1").fetchall()
        }
    by_rule: dict[str, list[dict]] = {}
    if quarantine is not None:
        rows = con.execute(
            f"""SELECT strftime({QUARANTINE_PARTITION_COLUMN}, '%Y-%m-%d'), rule, any_value(column_name), count(*)
                FROM {sql.ident(quarantine.table)} WHERE {sql.in_window(QUARANTINE_PARTITION_COLUMN, window)}
                GROUP BY 1, 2 ORDER BY 1, count(*) DESC, 2"""
        ).fetchall()
        for partition, rule, column, n in rows:
            by_rule.setdefault(partition, []).append({"rule": rule, "column": column, "rows": n})
    verdicts = {}
    for partition in partitions:
        failing = [
            {"rule": r.name, "column": r.column, "failing_rows": int(n)}
            for r, n in zip(rules, counts.get(partition, [0] * len(rules)), strict=True)
            if n
        ]
        verdicts[partition] = _verdict(
            table.contract,
            failing,
            pandera,
            quarantine.quarantined.get(partition, 0) if quarantine else 0,
            quarantine.rows_in_scope.get(partition, 0) if quarantine else 0,
            quarantine.max_fraction if quarantine else None,
            by_rule.get(partition, []),
        )
    return verdicts


def _quarantined_by_rule(con, quarantine_relation: str, personal_keys: tuple[str, ...] = ()) -> list[dict]:
    """Each quarantine rule with its column, row count and a few of its rows (file, row, record),
    the record's `personal_keys` masked: the UI shows no personal value."""
    # Masked after the sample is taken: a few records, not every quarantined one.
    record = sql.json_masked_keys("__s.record", personal_keys)
    # min_by keeps only the first rows of each rule while it aggregates: a list of every quarantined
    # row, sliced afterwards, held all of them (700,000 in a 10 M-row day did not fit 512 MB).
    rows = con.execute(
        f"""SELECT rule, column_name, rows,
                   list_transform(sample, lambda __s: {{'file': __s.file, 'row': __s.row,
                                                       'record': CAST({record} AS VARCHAR)}})
            FROM (SELECT rule, any_value(column_name) AS column_name, count(*) AS rows,
                         min_by({{'file': source_file, 'row': source_row, 'record': record}},
                                {{'file': source_file, 'row': source_row}}, {tc.FAILURE_SAMPLE_SIZE}) AS sample
                  FROM ({quarantine_relation}) GROUP BY rule)
            ORDER BY rows DESC, rule"""
    ).fetchall()
    return [{"rule": r, "column": c, "rows": n, "sample": sample} for r, c, n, sample in rows]


def publish_contract_table(
    context: dg.AssetExecutionContext,
    warehouse: Warehouse,
    table: ContractTable,
    window: DateWindow | None,
    partition_rows: dict[str | None, int],
    verdicts: tuple[Verdict, dict[str, Verdict]],
    metadata: dict,
    partition_metadata: dict[str, dict] | None = None,
    more_checks: list[CheckOutcome] | None = None,
) -> Iterator:
    """What a clean or curated table's run records: its rows, a preview, its contract verdicts and
    the outcomes of its other checks (`more_checks`)."""
    with warehouse.read() as con:
        total, preview = table.summary(con, window)
    run_verdict, partition_verdicts = verdicts
    yield from publish(
        context,
        table_name=table.name,
        partition_rows=partition_rows,
        total_rows=total,
        metadata={**metadata, "preview": preview},
        checks=[CheckOutcome(CONTRACT_CHECK, run_verdict, partition_verdicts, blocking=True), *(more_checks or [])],
        partition_metadata=partition_metadata,
    )
