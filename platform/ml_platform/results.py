"""What a run records in Dagster: materialization metadata and check results, per partition.

Every layer's assets report through here, so the UI reads the same things everywhere:
- `dagster/row_count` is the table's total rows, `dagster/table_name` its name;
- `dagster/partition_row_count` is each partition's own rows, also inside a single-run range
  backfill, where Dagster would otherwise copy the run's metadata to every partition (each
  partition gets its own figures with `context.add_asset_metadata(..., partition_key=...)`);
- a check has one result for the run and, in a range run, one per partition;
- a `plotted` check's numeric figures are also each partition's materialization metadata, as
  `quality/<check>_<figure>` (e.g. `quality/volume_deviation`): the UI graphs materialization
  metadata by partition (the asset's Metadata -> Plots), not check metadata, so this is how a
  check's measurements become a plot.

The per-partition check results are what make range backfills gate downstream correctly.
Dagster 1.13 stores a partitioned check's result only for one-partition runs; a range run's
result has no partition, so `all_deps_blocking_checks_passed` never held for backfilled
partitions and automation stalled. Here, after the run's materializations are stored, each
partition gets an `AssetCheckEvaluation` naming its partition and the materialization it
checked: automation then builds downstream of exactly the partitions that passed, and the UI
shows each partition's verdict.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg

# Materialization metadata holding a check's figure, plotted per partition.
PLOTTED_PREFIX = "quality/"


@dataclass
class Verdict:
    """A check's outcome for the whole run or for one partition."""

    passed: bool
    metadata: dict
    description: str | None = None
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR

    def _fields(self) -> dict:
        return {
            "passed": self.passed,
            "severity": self.severity,
            "metadata": self.metadata,
            "description": self.description,
        }

    def result(self, check_name: str | None = None) -> dg.AssetCheckResult:
        """The verdict as what a check step returns (`check_name` when the step has several checks)."""
        return dg.AssetCheckResult(check_name=check_name, **self._fields())

    def evaluation(self, asset_key: dg.AssetKey, check_name: str, **more) -> dg.AssetCheckEvaluation:
        """The verdict as an evaluation recorded outside a check step (a sensor, a command, one
        partition of a range run: `more` names its partition and materialization)."""
        return dg.AssetCheckEvaluation(asset_key=asset_key, check_name=check_name, **self._fields(), **more)


@dataclass
class CheckOutcome:
    """One check's verdicts in a run: for the run, and for each partition it wrote."""

    name: str
    run_verdict: Verdict
    partition_verdicts: dict[str, Verdict]
    blocking: bool = False
    # Its numeric figures are plotted per partition (see the module docstring).
    plotted: bool = False


def plotted_figures(checks: list[CheckOutcome]) -> dict[str, dict]:
    """Partition -> `quality/<check>_<figure>` -> value, for the numeric figures of the plotted checks."""
    figures: dict[str, dict] = {}
    for check in checks:
        if not check.plotted:
            continue
        for partition, verdict in check.partition_verdicts.items():
            for key, value in verdict.metadata.items():
                value = getattr(value, "value", value)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    figures.setdefault(partition, {})[f"{PLOTTED_PREFIX}{check.name}_{key}"] = value
    return figures


def publish(
    context: dg.AssetExecutionContext,
    *,
    table_name: str,
    partition_rows: dict[str | None, int],
    total_rows: int,
    metadata: dict,
    checks: list[CheckOutcome],
    partition_metadata: dict[str, dict] | None = None,
) -> Iterator:
    """Yield the run's materialization and check results (an asset body `yield from`s it).

    `partition_rows`: rows per partition key written by the run ({None: rows} without partitions).
    One partition (or none): a MaterializeResult with the check result, which Dagster ties to the
    partition itself. A range: per-partition metadata, the MaterializeResult (the run's check
    result, stored without a partition), then one check evaluation per partition.
    """
    keys = [k for k in partition_rows if k is not None]
    ranged = len(keys) > 1
    plotted = plotted_figures(checks)
    if ranged:
        for key in keys:
            context.add_asset_metadata(
                {
                    "dagster/partition_row_count": partition_rows[key],
                    **(partition_metadata or {}).get(key, {}),
                    **plotted.get(key, {}),
                },
                partition_key=key,
            )
    run_metadata = {
        "dagster/row_count": total_rows,
        "dagster/table_name": table_name,
        **(
            {"dagster/partition_row_count": partition_rows[keys[0]], **plotted.get(keys[0], {})}
            if len(keys) == 1
            else {}
        ),
        **metadata,
    }
    results = [check.run_verdict.result(check.name) for check in checks]
    yield dg.MaterializeResult(metadata=run_metadata, check_results=results)
    if ranged:
        for check in checks:
            yield from partition_check_evaluations(context, check.name, check.partition_verdicts, check.blocking)


def partition_check_evaluations(
    context: dg.AssetExecutionContext, check_name: str, verdicts: dict[str, Verdict], blocking: bool
) -> Iterator[dg.AssetCheckEvaluation]:
    """One evaluation per partition, each targeting that partition's latest materialization.

    Call after the run's MaterializeResult has been yielded: Dagster stores the materializations
    before the asset body resumes, so each partition's record is already there to point at.
    """
    # Not exported at the top level of dagster 1.13. Without it the evaluation does not count as
    # checking the current materialization; the range-backfill automation test fails if it changes.
    from ml_platform.dagster_private import AssetCheckEvaluationTargetMaterializationData

    key = context.asset_key
    records = _latest_materializations(context, key, list(verdicts))
    for partition, verdict in verdicts.items():
        record = records[partition]
        yield verdict.evaluation(
            key,
            check_name,
            blocking=blocking,
            partition=partition,
            target_materialization_data=AssetCheckEvaluationTargetMaterializationData(
                storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
            ),
        )


def _latest_materializations(context: dg.AssetExecutionContext, key: dg.AssetKey, partitions: list[str]) -> dict:
    """This run's materialization record of each partition, in one query (newest first)."""
    found = {}
    for record in context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=partitions), limit=len(partitions)
    ).records:
        if record.run_id == context.run_id:
            found.setdefault(record.partition_key, record)
    missing = [p for p in partitions if p not in found]
    if missing:
        raise RuntimeError(f"{key.to_user_string()}: no materialization of {missing} recorded by this run")
    return found
