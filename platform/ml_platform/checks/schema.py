"""The raw layer's `schema` check: which column sets arrived, against the source's current version.

A batch whose columns differ from the current version fails the check with WARN severity when
the source's schema policy accepts it, and ERROR when the policy rejects it (its rows are then
quarantined by the clean layer). Never blocking: raw keeps every row whatever its columns.
"""

from __future__ import annotations

import dagster as dg
import duckdb

from ml_platform.dagster_previews import acknowledged
from ml_platform.ingestion.schema_policy import ledger_batches, schema_verdict
from ml_platform.ingestion.spec import SourceSpec
from ml_platform.partitions import window_keys
from ml_platform.results import Verdict
from ml_platform.warehouse.sql import DateWindow

SCHEMA_CHECK = "schema"


def schema_check_spec(asset_key: dg.AssetKey, spec: SourceSpec, partitions_def) -> dg.AssetCheckSpec:
    with acknowledged("partitions_def on an AssetCheckSpec"):
        return dg.AssetCheckSpec(
            name=SCHEMA_CHECK,
            asset=asset_key,
            partitions_def=partitions_def,
            description=f"Column sets of ingested batches vs the current schema version (policy: {spec.schema_policy}).",
        )


def evaluate_schema(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, window: DateWindow
) -> tuple[Verdict, dict[str, Verdict]]:
    """The verdict on every batch of the landing window, and one per landing day."""
    batches = ledger_batches(con, spec, window)
    by_day = {day: [b for b in batches if b[1].isoformat() == day] for day in window_keys(window)}
    return _verdict(spec, batches), {day: _verdict(spec, day_batches) for day, day_batches in by_day.items()}


def _verdict(spec: SourceSpec, batches: list[tuple]) -> Verdict:
    current = set(spec.current_columns or spec.source_columns)
    changes = []
    for source_file, _, columns, version in batches:
        verdict = schema_verdict(spec, columns)
        if verdict != "current":
            changes.append(
                {
                    "batch": source_file,
                    "schema_version": version,
                    "verdict": verdict,
                    "added": sorted(set(columns) - current),
                    "missing": sorted(current - set(columns)),
                }
            )
    rejected = [c for c in changes if c["verdict"] == "rejected"]
    return Verdict(
        passed=not changes,
        severity=dg.AssetCheckSeverity.ERROR if rejected else dg.AssetCheckSeverity.WARN,
        metadata={
            "batches": len(batches),
            "changed_batches": len(changes),
            "rejected_batches": len(rejected),
            "schema_versions": ", ".join(sorted({b[3] for b in batches})) or "none",
            "changes": dg.MetadataValue.json(changes),
        },
        description=None
        if not changes
        else f"{len(changes)} batch(es) differ from the current schema ({len(rejected)} rejected)",
    )
