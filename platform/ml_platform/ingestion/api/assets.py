"""Factory: a REST API source spec becomes its raw asset, daily schedule, catch-up sensor and API resource.

A run of `raw_<name>` covers a window of observation days (one partition or a single-run
backfill). It works in two committed steps:

1. Fetch (responses.py): one GET per day and location, every response stored as received
   in `raw_<name>_responses`, in its own transaction, committed before anything is transformed.
2. Transform (records.py): in a second transaction, replace the window of `raw_<name>` with
   one row per record of the stored responses, and one ingest-ledger row per response. The
   shared clean asset does the rest.

Because step 2 reads only the stored responses, a run with config `reprocess: true` (or the run
tag `ml_platform/reprocess=true`, handy for backfills) skips step 1 and rebuilds the raw window
from what was stored, without calling the API: after a records_path fix, a contract change, or
when the API is down.
"""

import dagster as dg
from pydantic import Field

from ml_platform.dagster_previews import acknowledged
from ml_platform.ingestion.api.catch_up import api_catch_up_sensor
from ml_platform.ingestion.api.client import ApiError
from ml_platform.ingestion.api.records import load_raw_from_responses
from ml_platform.ingestion.api.resource import ApiSourceResource, api_resource
from ml_platform.ingestion.api.responses import ATTEMPTS, create_responses_table, fetch_window, store_responses
from ml_platform.ingestion.api.schedule import api_schedule
from ml_platform.ingestion.api.spec import ApiSourceSpec
from ml_platform.ingestion.raw_asset import RawSide, publish_raw, raw_asset_args, raw_outcome
from ml_platform.partitions import run_window, window_label
from ml_platform.raw.lake_run import raw_run
from ml_platform.raw.table import create_raw_tables, ingestion_time, schema_versions_label

REPROCESS_TAG = "ml_platform/reprocess"
# Dagster's own retries, on top of the client's: for outages longer than the client's patience.
STEP_RETRY_POLICY = dg.RetryPolicy(max_retries=3, delay=30, backoff=dg.Backoff.EXPONENTIAL)


class ApiRawConfig(dg.Config):
    reprocess: bool = Field(
        default=False,
        description="Rebuild the raw window from the stored API responses, without calling the API.",
    )


def _wants_reprocess(context: dg.AssetExecutionContext, config: ApiRawConfig) -> bool:
    return config.reprocess or context.run.tags.get(REPROCESS_TAG, "").strip().lower() in ("1", "true", "yes")


def api_raw_asset(spec: ApiSourceSpec) -> dg.AssetsDefinition:
    args = raw_asset_args(
        spec,
        kinds={"api"},
        description=(
            f"GET {spec.path}?location=..&date=YYYY-MM-DD for {', '.join(spec.locations)}, "
            f"records at `{spec.records_path}`: one partition per observation day (UTC), values kept as sent, "
            f"with lineage. Responses are kept in `{spec.responses_table}`; run with config `reprocess: true` "
            f"(or tag `{REPROCESS_TAG}=true`) to rebuild from them without calling the API."
        ),
        retry_policy=STEP_RETRY_POLICY,
        required_resource_keys={"warehouse", spec.resource_key},
    )

    # Single-run range backfills: one transform per range (see dagster_previews).
    with acknowledged("backfill_policy"):

        @dg.asset(**args)
        def _raw(context: dg.AssetExecutionContext, config: ApiRawConfig):
            warehouse = context.resources.warehouse
            window = run_window(context)
            reprocess = _wants_reprocess(context, config)
            requests_made = 0
            if not reprocess:
                api: ApiSourceResource = getattr(context.resources, spec.resource_key)
                try:
                    with api.client(spec, logger=context.log) as client:
                        rows = fetch_window(client, spec, window)
                except ApiError as exc:
                    if not exc.retryable:
                        raise dg.Failure(str(exc), allow_retries=False) from None
                    raise
                requests_made = sum(r[ATTEMPTS] for r in rows)
                # Committed on its own: the responses survive a failure of the transform below.
                own = (spec.responses_table,)
                with raw_run(warehouse, spec, window, context.run_id, own) as run:
                    create_responses_table(run.con, spec)
                    run.replaces(spec.responses_table)
                    store_responses(run.con, spec, window, rows)
                context.log.info(
                    f"{spec.responses_table} {window_label(window)}: stored {len(rows)} responses "
                    f"({requests_made} requests)"
                )
            ingested_at = ingestion_time()
            with raw_run(warehouse, spec, window, context.run_id, (spec.responses_table,)) as run:
                con = run.con
                create_responses_table(con, spec)
                create_raw_tables(con, spec)
                run.keeps_own(spec.responses_table)  # read, not written
                run.replaces(spec.raw_table)
                run.keeps_ledger()
                ledger, empty = load_raw_from_responses(con, spec, window, ingested_at)
                records = sum(entry["rows"] for entry in ledger)
                outcome = raw_outcome(con, spec, window)
                metadata = {
                    "rows_ingested": records,
                    "mode": "reprocess" if reprocess else "fetch",
                    "responses": len(ledger) + empty,
                    "empty_responses": empty,
                    "requests": requests_made,
                    "schema_versions": schema_versions_label(ledger),
                    "ingested_batches": dg.MetadataValue.json(ledger),
                }
            outcome = run.counted(outcome)
            metadata |= run.metadata()
            context.log.info(
                f"{spec.raw_table} {window_label(window)}: {records} records from {len(ledger) + empty} "
                f"responses ({'re-processed from stored responses' if reprocess else 'fetched'})"
            )
            yield from publish_raw(context, spec, outcome, metadata)

    return _raw


def api_raw_side(spec: ApiSourceSpec) -> RawSide:
    raw = api_raw_asset(spec)
    schedule = api_schedule(spec, raw)
    catch_up = api_catch_up_sensor(spec, raw)
    return RawSide(
        assets=[raw],
        sensors=[catch_up] if catch_up else [],
        schedules=[schedule] if schedule else [],
        resources={spec.resource_key: api_resource(spec)},
    )
