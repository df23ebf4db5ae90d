"""Factory: a file source spec becomes its raw asset (with the `schema` and `files` checks) and
landing sensor.

A raw run replaces its landing days from what is in the landing folder now. Raw stays
reproducible: when a file that a day's raw partition was built from has since been moved away,
the run refuses (naming the files) instead of silently shrinking the partition; to accept the
loss on purpose, launch the run with the tag `ml_platform/accept_missing_files=true`.

A run looks only at its own window of the landing folder (its date folders, plus files outside
any date folder, which belong to every run), so its cost does not grow with the landing history:
files other days cannot read, or refuse, are reported by those days' runs.
"""

import datetime as dt
from dataclasses import dataclass

import dagster as dg

from ml_platform import settings
from ml_platform.checks.files import evaluate_files, files_check_spec
from ml_platform.dagster_previews import acknowledged
from ml_platform.ingestion.files.landing import TEXT_FORMATS, LandedFile, parse_landing_date
from ml_platform.ingestion.files.landing_store import landing_store
from ml_platform.ingestion.files.null_markers import add_counts
from ml_platform.ingestion.files.reader import ingest_file
from ml_platform.ingestion.files.sensor import landing_sensor
from ml_platform.ingestion.files.spec import FileSourceSpec
from ml_platform.ingestion.raw_asset import (
    RawOutcome,
    RawSide,
    own_checks,
    publish_raw,
    raw_asset_args,
    raw_outcome,
)
from ml_platform.partitions import daily_partitions, run_window, window_label
from ml_platform.raw import quarantine
from ml_platform.raw.lake_run import RawRun, raw_run
from ml_platform.raw.table import (
    create_raw_tables,
    ingested_files,
    ingestion_time,
    replace_raw_window,
    schema_versions_label,
)
from ml_platform.warehouse import Warehouse
from ml_platform.warehouse.sql import DateWindow

ACCEPT_MISSING_TAG = "ml_platform/accept_missing_files"


def _landing_day(relative_path: str):
    """The landing date of a path under the landing root (`<source>/<date>/...`), if it has one."""
    parts = relative_path.split("/")
    return parse_landing_date(parts[1]) if len(parts) > 2 else None


def _refuse_shrinking(context: dg.AssetExecutionContext, previously: set[str], files: list[LandedFile]) -> None:
    missing = sorted(previously - {f.relative_path for f in files})
    if missing and context.run.tags.get(ACCEPT_MISSING_TAG) != "true":
        raise dg.Failure(
            description=(
                f"{len(missing)} file(s) this raw partition was built from are no longer in landing: {missing}."
                " Put them back to rebuild it; to drop their rows on purpose, re-run with the tag"
                f" {ACCEPT_MISSING_TAG}=true."
            ),
            metadata={"missing_files": dg.MetadataValue.json(missing)},
        )


def file_raw_asset(spec: FileSourceSpec) -> dg.AssetsDefinition:
    partitions_def = daily_partitions()
    parallel = settings.parallel_raw()
    args = raw_asset_args(
        spec,
        kinds=spec.formats,
        description=(
            f"Files from landing/{spec.landing_folder}/<YYYY-MM-DD>/ (local, or under the S3 prefix) as landed: one "
            "partition per landing day (UTC), values kept as text, with lineage. Files that cannot be "
            "read in full are recorded in quarantined_files and rejected_lines."
        ),
        check_specs=[files_check_spec(dg.AssetKey(spec.raw_table), spec.max_unreadable_file_share, partitions_def)],
        parallel=parallel,
    )

    # Single-run range backfills: one set-based write per range (see dagster_previews).
    with acknowledged("backfill_policy"):

        @dg.asset(**args)
        def _raw(context: dg.AssetExecutionContext, warehouse: Warehouse):
            window = run_window(context)
            store = landing_store()
            landed = Landed(*store.window_listing(spec.landing_folder, spec.formats, window), ingestion_time())
            with raw_run(warehouse, spec, window, context.run_id) as run:
                outcome, metadata, ledger = _ingest(context, run, spec, window, landed)
            outcome = run.counted(outcome)
            metadata |= run.metadata()
            context.log.info(
                f"{spec.raw_table} {window_label(window)}: {len(landed.files)} files, {metadata['rows_ingested']} rows"
            )
            for entry in ledger:
                if "reason" in entry:
                    context.log.warning(f"{entry['file']}: {entry['status']}: {entry['reason']}")
                if entry.get("fallback_lines"):
                    context.log.warning(
                        f"{entry['file']}: {entry['fallback_lines']} line(s) not valid {entry.get('encoding', 'utf-8')},"
                        f" decoded as {spec.fallback_encoding} (kept; counted in ingest_ledger.fallback_lines)"
                    )
            if landed.refused:
                context.log.warning(f"files in landing that {spec.name} refuses to read: {landed.refused}")
            if landed.unsupported:
                context.log.warning(
                    f"files in landing that {spec.name} cannot read (left in place): {landed.unsupported}"
                )
            yield from publish_raw(context, spec, outcome, metadata)

    return _raw


@dataclass(frozen=True)
class Landed:
    """What a raw run found in its window of the landing area."""

    files: list[LandedFile]
    unsupported: list[str]  # paths under the landing root
    refused: dict[str, str]  # path -> reason
    ingested_at: dt.datetime


def _ingest(
    context: dg.AssetExecutionContext, run: RawRun, spec: FileSourceSpec, window: DateWindow, landed: Landed
) -> tuple[RawOutcome, dict, list[dict]]:
    """Replace the window's raw rows, ledger and quarantine with what `landed` holds, on the run's
    connection (`raw.lake_run`); returns the outcome, the run's metadata and the ledger entries."""
    con = run.con
    create_raw_tables(con, spec)
    quarantine.create_quarantine_tables(con)
    run.replaces(spec.raw_table)
    run.keeps_ledger()
    for table in quarantine.TABLES:
        run.keeps(table)
    _refuse_shrinking(context, ingested_files(con, spec, window), landed.files)
    replace_raw_window(con, spec, window)
    quarantine.forget_quarantine_window(con, spec, window)
    ledger = []
    for file in landed.files:
        ledger.append(ingest_file(con, spec, file, landed.ingested_at))
        run.flush(spec.raw_table)
    run.settle(spec.raw_table)
    never_read = {
        **{p: (quarantine.UNSUPPORTED, _unsupported_reason(spec)) for p in landed.unsupported},
        **{p: (quarantine.REFUSED, reason) for p, reason in landed.refused.items()},
    }
    for path, (status, reason) in sorted(never_read.items()):
        if (day := _landing_day(path)) and window[0] <= day <= window[1]:
            quarantine.record_never_read(con, spec, day, path, status, reason, landed.ingested_at)
    misplaced = [p for p in landed.unsupported if _landing_day(p) is None]
    outcome = raw_outcome(
        con, spec, window, [evaluate_files(con, spec, window, misplaced, spec.max_unreadable_file_share)]
    )
    read_as_null: dict[str, dict[str, int]] = {}
    for entry in ledger:
        add_counts(read_as_null, entry.get("null_markers", {}))
    metadata = {
        "rows_ingested": sum(entry["rows"] for entry in ledger),
        "files": len(landed.files),
        "rows_rejected": sum(entry.get("rows_rejected", 0) for entry in ledger),
        # Lines not valid in their file's encoding, decoded with the source's fallback_encoding.
        "lines_decoded_with_fallback": sum(entry.get("fallback_lines", 0) for entry in ledger),
        # column -> null marker -> values the clean layer reads as NULL (none unless declared).
        "values_read_as_null": dg.MetadataValue.json(read_as_null),
        "schema_versions": schema_versions_label(ledger),
        "ignored_files": dg.MetadataValue.json(landed.unsupported),
        "refused_files": dg.MetadataValue.json(landed.refused),
        "ingested_files": dg.MetadataValue.json(ledger),
    }
    return outcome, metadata, ledger


def _unsupported_reason(spec: FileSourceSpec) -> str:
    compressed = [f for f in spec.formats if f in TEXT_FORMATS]
    also = f"; {', '.join(compressed)} also as .gz or .zst" if compressed else ""
    return (
        f"not a format {spec.name} reads ({', '.join(spec.formats)}{also}): rename it with its real extension,"
        " or add the format to the source's formats"
    )


def file_raw_side(spec: FileSourceSpec) -> RawSide:
    raw = file_raw_asset(spec)
    return RawSide(assets=[raw], sensors=[landing_sensor(spec, raw.key, raw.partitions_def, own_checks(raw))])
