"""What the raw assets of every source kind (files, PostgreSQL, REST APIs) share.

One daily-partitioned asset per source in the `raw` group, written in single-run backfills in
the warehouse pool, carrying the raw `schema` check; and what every raw run reports: the
table's total rows, each landing day's own rows and schema verdict (also inside a range
backfill), the table name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import dagster as dg
import duckdb

from ml_platform.automation import on_failure_only
from ml_platform.checks.schema import SCHEMA_CHECK, evaluate_schema, schema_check_spec
from ml_platform.partitions import daily_partitions
from ml_platform.raw.spec import SourceSpec
from ml_platform.raw.table import raw_partition_counts
from ml_platform.raw.value_kinds import record_value_kinds
from ml_platform.results import CheckOutcome, publish
from ml_platform.warehouse import WAREHOUSE_POOL, sql
from ml_platform.warehouse.sql import DateWindow


@dataclass
class RawSide:
    """What a source kind's builder returns: the raw asset(s) and the triggers and resources they need."""

    assets: list = field(default_factory=list)  # the raw asset first
    sensors: list = field(default_factory=list)
    schedules: list = field(default_factory=list)
    resources: dict = field(default_factory=dict)


def raw_asset_args(
    spec: SourceSpec,
    *,
    kinds: Iterable[str],
    description: str,
    check_specs: Iterable = (),
    parallel: bool = False,
    retried_by_automation: bool = True,
    **extra,
) -> dict:
    """Keyword arguments of `dg.asset` for the source's raw asset; `check_specs` adds kind-specific
    checks beside `schema`, `extra` other arguments. `parallel`: its runs do not hold the warehouse
    while they work (`raw.lake_run`), so they take no pool slot, and a backfill is one run per
    day, which Dagster's queue runs side by side. `retried_by_automation`: automation tries again
    an attempt that died (`ml_platform.automation.on_failure_only`); False for a kind whose trigger
    retries its own runs (a Kafka source's lag sensor).

    Apply `dg.asset(**raw_asset_args(...))` inside `acknowledged("backfill_policy")`.
    """
    partitions_def = daily_partitions()
    return dict(
        name=spec.raw_table,
        group_name="raw",
        kinds={"duckdb", *kinds},
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.multi_run(1) if parallel else dg.BackfillPolicy.single_run(),
        pool=None if parallel else WAREHOUSE_POOL,
        owners=[spec.owner],
        tags={"source": spec.name, **spec.tags},
        description=f"{spec.description}\n\n{description}",
        metadata={"dagster/table_name": spec.raw_table},
        check_specs=[schema_check_spec(dg.AssetKey(spec.raw_table), spec, partitions_def), *check_specs],
        # Overdue in the UI once nothing has been ingested for longer than the source's rule allows.
        freshness_policy=spec.freshness.policy(),
        # Its trigger requests it; automation only tries again an attempt that died or failed for a
        # reason that is not its data (ml_platform.automation.Recover).
        automation_condition=on_failure_only() if retried_by_automation else None,
        **extra,
    )


def own_checks(raw: dg.AssetsDefinition) -> list[dg.AssetCheckKey]:
    """The checks a triggered raw run (landing sensor, change sensor, schedule) executes: those the
    raw asset yields itself (`schema` and its kind's).

    Checks defined apart on the raw asset stay out: `landing_freshness` is kept current by its own
    sensor, and Dagster 1.13 plans an unpartitioned check of a one-partition run under the run's
    partition but records its result without one, leaving a second execution in the check's
    history that stays planned (shown as skipped) after every such run.
    """
    return sorted(raw.check_keys, key=lambda k: k.name)


@dataclass
class RawOutcome:
    """What a raw write left, counted inside its transaction: rows per landing day, the table's
    total, and its checks' verdicts (`schema`, plus any the source kind adds)."""

    partition_rows: dict[str, int]
    total_rows: int
    checks: list[CheckOutcome]


def raw_outcome(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, window: DateWindow, extra_checks: Iterable[CheckOutcome] = ()
) -> RawOutcome:
    """Call inside the write transaction, after writing."""
    total = con.execute(f"SELECT count(*) FROM {sql.ident(spec.raw_table)}").fetchone()[0]
    record_value_kinds(con, spec, window)
    schema = CheckOutcome(SCHEMA_CHECK, *evaluate_schema(con, spec, window))
    return RawOutcome(raw_partition_counts(con, spec, window), total, [schema, *extra_checks])


def publish_raw(context: dg.AssetExecutionContext, spec: SourceSpec, outcome: RawOutcome, metadata: dict) -> Iterator:
    """The raw run's materialization and check results (never blocking: raw keeps what arrived)."""
    yield from publish(
        context,
        table_name=spec.raw_table,
        partition_rows=outcome.partition_rows,
        total_rows=outcome.total_rows,
        metadata=metadata,
        checks=outcome.checks,
    )
