"""The raw layer's `schema` check: which columns arrived, and with which kinds of values.

A batch whose columns differ from the current version fails the check with WARN severity when
the source's schema policy accepts it, and ERROR when the policy rejects it (its rows are then
quarantined by the clean layer). A column whose values changed kind (numbers that became text,
`ml_platform.raw.value_kinds`) is a WARN, and an ERROR when the contract's type cannot read
the new kind. Never blocking: raw keeps every row whatever its columns.
"""

from __future__ import annotations

import dagster as dg
import duckdb

from ml_platform.dagster_previews import acknowledged
from ml_platform.partitions import window_keys
from ml_platform.raw.schema_policy import ledger_batches, schema_verdict
from ml_platform.raw.spec import SourceSpec
from ml_platform.raw.value_kinds import batch_kinds, kind_changes, usual_kinds
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
    # Each batch against the kinds of the days before its own (earlier days of the window included).
    kinds = batch_kinds(con, spec, window)
    type_changes = {
        (source_file, day.isoformat()): changes
        for source_file, day, batch in kinds
        if window[0] <= day and (changes := kind_changes(spec, batch, usual_kinds(kinds, day)))
    }
    by_day = {day: [b for b in batches if b[1].isoformat() == day] for day in window_keys(window)}
    return _verdict(spec, batches, type_changes), {
        day: _verdict(spec, day_batches, type_changes) for day, day_batches in by_day.items()
    }


def _verdict(spec: SourceSpec, batches: list[tuple], type_changes: dict[tuple[str, str], list[dict]]) -> Verdict:
    current = set(spec.current_columns or spec.source_columns)
    changes, kinds = [], []
    for source_file, landing_date, columns, version in batches:
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
        kinds += [{"batch": source_file, **c} for c in type_changes.get((source_file, landing_date.isoformat()), [])]
    rejected = [c for c in changes if c["verdict"] == "rejected"]
    unreadable = [k for k in kinds if not k["readable"]]
    problems = []
    if changes:
        problems.append(f"{len(changes)} batch(es) differ from the current schema ({len(rejected)} rejected)")
    for k in kinds:
        was = f"{k['was']} -> {k['now']}" if k["was"] not in (None, k["now"]) else k["now"]
        unread = "" if k["readable"] else f", which its {k['contract_type']} contract type cannot read"
        problems.append(f"{k['batch']}: {k['column']} values are {was}{unread}")
    return Verdict(
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR if rejected or unreadable else dg.AssetCheckSeverity.WARN,
        metadata={
            "batches": len(batches),
            "changed_batches": len(changes),
            "rejected_batches": len(rejected),
            "type_changes": len(kinds),
            "schema_versions": ", ".join(sorted({b[3] for b in batches})) or "none",
            "changes": dg.MetadataValue.json(changes),
            "kind_changes": dg.MetadataValue.json(kinds),
        },
        description="; ".join(problems) or None,
    )
