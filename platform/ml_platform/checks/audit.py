"""The `audit` check's name, figures and verdict: is every audited partition what its inputs give?

The audit itself (recomputing each partition from what it declares it reads, in a scratch
database) lives with the curated tables (`ml_platform.curated.audit`); this is what its result
says, so that whoever reads the result (the UI, `python -m ml_platform audit`, the metrics in
`ml_platform.monitoring.metrics`) reads the same names. The check never blocks: a partition that
differs is reported (and automation rebuilds a stale one by itself), it does not stop the tables
downstream.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from ml_platform.results import Verdict

AUDIT_CHECK = "audit"
# The job of every table's audit check, which a daily schedule runs (`settings.audit_cron`).
AUDIT_JOB = "consistency_audit"
# Metadata of every audit evaluation; the metrics endpoint serves the first two per table.
CHECKED = "partitions_checked"
DIFFERING = "partitions_differing"
FINDINGS = "differing"
DESCRIPTION = (
    "Recomputes the latest partitions from what they declare they read, in a scratch database, and "
    "compares them with the warehouse row by row (also: python -m ml_platform audit). Never blocks."
)


@dataclass(frozen=True)
class Finding:
    """A partition whose warehouse rows differ from its recomputation, and why."""

    table: str
    partition: str
    only_in_warehouse: int
    only_in_recompute: int
    reason: str

    def line(self) -> str:
        return (
            f"{self.table} {self.partition}: {self.only_in_warehouse} rows only in the warehouse, "
            f"{self.only_in_recompute} only in the recomputation; {self.reason}"
        )


def audit_verdict(checked: list[str], findings: list[Finding]) -> Verdict:
    """Passes when every checked partition equals its recomputation (a warning otherwise)."""
    metadata = {
        CHECKED: len(checked),
        DIFFERING: len(findings),
        "first_partition": checked[0] if checked else "",
        "last_partition": checked[-1] if checked else "",
        FINDINGS: dg.MetadataValue.json([f.__dict__ for f in findings]),
    }
    if not findings:
        return Verdict(True, metadata, f"{len(checked)} partitions equal their recomputation from their inputs")
    return Verdict(
        False,
        metadata,
        "; ".join(f.line() for f in findings[:5]) + (f"; and {len(findings) - 5} more" if len(findings) > 5 else ""),
        severity=dg.AssetCheckSeverity.WARN,
    )
