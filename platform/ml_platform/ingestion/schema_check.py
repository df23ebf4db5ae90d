"""The raw layer's schema check: which column sets arrived, against the source's current version.

Raw ingestion never rejects a batch for its columns (nothing is lost); this check makes a change
visible. A batch whose columns differ from the current version fails the check with WARN
severity when the source's schema policy accepts it, and ERROR when the policy rejects it
(its rows are then quarantined by the clean layer).
"""

from __future__ import annotations

import dagster as dg
import duckdb

from ml_platform.sources.spec import SourceSpec

SCHEMA_CHECK = "schema"


def schema_check_spec(asset_key: dg.AssetKey, spec: SourceSpec, partitions_def) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        name=SCHEMA_CHECK,
        asset=asset_key,
        partitions_def=partitions_def,
        description=f"Column sets of ingested batches vs the current schema version (policy: {spec.schema_policy}).",
    )


# The quarantine rule of rows in a batch the policy rejects.
REJECTION_RULES = {
    "strict": "_schema:strict(columns differ from the current version)",
    "add_only": "_schema:add_only(columns removed)",
}


def schema_verdict(spec: SourceSpec, columns: list[str]) -> str:
    """'current', 'accepted' (a change the policy allows) or 'rejected': the one place the
    schema policies are decided, for this check and for the clean layer's quarantine."""
    current = list(spec.current_columns or spec.source_columns)
    if sorted(set(columns)) == sorted(current):
        return "current"
    if spec.schema_policy == "strict":
        return "rejected"
    if spec.schema_policy == "add_only":
        present = all(any(name in columns for name in spec.equivalent_names(c)) for c in current)
        return "accepted" if present else "rejected"
    return "accepted"


def rejected_batches(con: duckdb.DuckDBPyConnection, spec: SourceSpec, landing_window=None) -> list[str]:
    """Batches (as `source_file@landing_date`) whose columns the policy rejects."""
    scope = "TRUE" if landing_window is None else "landing_date BETWEEN ? AND ?"
    batches = con.execute(
        f"SELECT source_file || '@' || CAST(landing_date AS VARCHAR), columns FROM ingest_ledger"
        f" WHERE source = ? AND {scope}",
        [spec.name, *(landing_window or ())],
    ).fetchall()
    return sorted(batch for batch, columns in batches if schema_verdict(spec, columns) == "rejected")


def evaluate_schema(con: duckdb.DuckDBPyConnection, spec: SourceSpec, window) -> dg.AssetCheckResult:
    batches = con.execute(
        "SELECT source_file, columns, schema_version FROM ingest_ledger"
        " WHERE source = ? AND landing_date BETWEEN ? AND ? ORDER BY source_file",
        [spec.name, *window],
    ).fetchall()
    current = set(spec.current_columns or spec.source_columns)
    changes = []
    for source_file, columns, version in batches:
        verdict = schema_verdict(spec, columns)
        if verdict != "current":
            changes.append({
                "batch": source_file, "schema_version": version, "verdict": verdict,
                "added": sorted(set(columns) - current), "missing": sorted(current - set(columns)),
            })
    rejected = [c for c in changes if c["verdict"] == "rejected"]
    return dg.AssetCheckResult(
        check_name=SCHEMA_CHECK,
        passed=not changes,
        severity=dg.AssetCheckSeverity.ERROR if rejected else dg.AssetCheckSeverity.WARN,
        metadata={
            "batches": len(batches),
            "changed_batches": len(changes),
            "rejected_batches": len(rejected),
            "schema_versions": ", ".join(sorted({b[2] for b in batches})) or "none",
            "changes": dg.MetadataValue.json(changes),
        },
        description=None if not changes else f"{len(changes)} batch(es) differ from the current schema ({len(rejected)} rejected)",
    )
