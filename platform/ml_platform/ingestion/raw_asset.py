"""What the raw assets of every source kind (files, PostgreSQL, REST APIs) share.

One daily-partitioned asset per source in the `raw` group, written in single-run backfills in
the warehouse pool, carrying the raw schema check; plus the ingestion timestamp and the
schema-version summary each run reports.
"""

import datetime as dt
from collections.abc import Iterable

import dagster as dg

from ml_platform.ingestion.schema_check import schema_check_spec
from ml_platform.partitions import WAREHOUSE_POOL, daily_partitions
from ml_platform.sources.spec import SourceSpec


def raw_asset_args(spec: SourceSpec, *, kinds: Iterable[str], description: str, **extra) -> dict:
    """Keyword arguments of `dg.asset` for the source's raw asset; `extra` adds kind-specific ones."""
    partitions_def = daily_partitions()
    return dict(
        name=spec.raw_table,
        group_name="raw",
        kinds={"duckdb", *kinds},
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
        owners=[spec.owner],
        tags={"source": spec.name, **spec.tags},
        description=f"{spec.description}\n\n{description}",
        check_specs=[schema_check_spec(dg.AssetKey(spec.raw_table), spec, partitions_def)],
        **extra,
    )


def ingestion_time() -> dt.datetime:
    """Now in UTC, naive: the warehouse stores timestamps without a zone."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def schema_versions_label(ledger: list[dict]) -> str:
    """The schema versions of the ingested batches (ledger rows), for run metadata."""
    return ", ".join(sorted({entry["schema_version"] for entry in ledger})) or "none"
