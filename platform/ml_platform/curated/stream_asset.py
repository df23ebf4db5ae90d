"""Factory: a stream feature view becomes its asset, run in the same run as its source's raw asset.

The source's lag sensor requests the raw run with every asset tagged as a micro-batch follower
of the source (`raw.stream.MICRO_BATCH_TAG`), so a view is brought up to date right after the
raw step commits, in the same run: no automation tick or second run between a message read and
its features served. The step applies every batch the view has not applied (`stream_update`),
in one warehouse transaction (on the lake: one catalog commit of the view's tables); with an online store configured (`ml_platform.online_store`) it
publishes the new rows there before it commits, and records the store's own write time as each
row's `created_at`, so offline rows become available exactly when online lookups could see them.
Without a store the rows are servable from the warehouse once committed (`created_at` = now).
"""

import datetime as dt

import dagster as dg

from ml_platform import online_store
from ml_platform.checks.contract import contract_check_spec, evaluate_contract, publish_contract_table
from ml_platform.checks.privacy import PRIVACY_CHECK, RawPersonal, evaluate_privacy, privacy_check_spec
from ml_platform.contracts import table_contract as tc
from ml_platform.curated import stream_update
from ml_platform.curated.stream_view import CREATED, TIMESTAMP, StreamFeatureView
from ml_platform.dagster_previews import acknowledged
from ml_platform.partitions import daily_partitions, run_window, window_keys
from ml_platform.raw.spec import SourceSpec
from ml_platform.raw.stream import MICRO_BATCH_TAG
from ml_platform.raw.table import ingestion_time
from ml_platform.results import CheckOutcome
from ml_platform.warehouse import WAREHOUSE_POOL


def stream_view_asset(
    view: StreamFeatureView, spec: SourceSpec, raw_personal: RawPersonal | None = None
) -> dg.AssetsDefinition:
    """`raw_personal`: where raw personal values live, for the privacy check (as for curated tables)."""
    with acknowledged("backfill_policy"):
        return _asset(view, spec, raw_personal or {})


def _asset(view: StreamFeatureView, spec: SourceSpec, raw_personal: RawPersonal) -> dg.AssetsDefinition:
    key = dg.AssetKey(view.name)
    partitions_def = daily_partitions()

    @dg.asset(
        name=view.name,
        deps=[dg.AssetKey(spec.raw_table)],
        partitions_def=partitions_def,
        # As its raw asset's: a range run is one run (and one transaction).
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=view.group,
        kinds={"duckdb", "redis", "pandera"},
        pool=WAREHOUSE_POOL,
        owners=[view.owner],
        tags={MICRO_BATCH_TAG: spec.name},
        description=(
            f"{view.description}\n\nA stream feature view of `{spec.name}`: per {', '.join(view.entity_columns)},"
            f" aggregates over the last {view.window} of events, one row per micro-batch that brought an entity"
            f" new events, brought up to date in the raw run; served online (TTL {view.ttl}) and point"
            " in time by get_training_set. A partition holds the rows of the batches read that day."
        ),
        metadata={
            "dagster/table_name": view.name,
            "dagster/column_schema": tc.table_schema(view.contract),
            "contract": view.contract.__name__,
        },
        check_specs=[contract_check_spec(key, view.contract, partitions_def), privacy_check_spec(key, partitions_def)],
        required_resource_keys={"warehouse"},
    )
    def _view(context: dg.AssetExecutionContext):
        store = online_store.configured_store()
        warehouse = context.resources.warehouse
        window = run_window(context)
        through = window[1]
        applied: list[stream_update.Applied] = []
        table = stream_update.view_table(view)
        with warehouse.transaction() as con:
            copy = stream_update.open_tables(con, view, spec)
            for batch in stream_update.pending_batches(con, view, spec, through):
                applied.append(
                    stream_update.apply_batch(con, view, spec, batch, _publisher(view, store), context.run_id)
                )
            stream_update.commit_tables(con, copy, context.run_id)
            partition_rows = table.partition_counts(con, window)
        rows = [row for a in applied for row in a.rows]
        lags = [(row[CREATED] - a.batch.ingested_at).total_seconds() for a in applied for row in a.rows]
        context.log.info(
            f"{view.name}: {len(applied)} batch(es) applied, {sum(a.events for a in applied)} new events,"
            f" {len(rows)} rows" + (" published to the online store" if store else "")
        )
        metadata = {
            "batches_applied": len(applied),
            "events_applied": sum(a.events for a in applied),
            "rows_written": len(rows),
            "entities": len({tuple(row[c] for c in view.entity_columns) for row in rows}),
            "rows_ignored_as_older": sum(a.ignored for a in applied),
            "online_store": "redis" if store else "none (served from the warehouse)",
            # From the batch's read to its rows being servable: the online half of event -> online.
            "read_to_servable_seconds_max": max(lags, default=0.0),
        }
        keys = window_keys(window)
        verdicts = evaluate_contract(warehouse, table, window, keys)
        private = evaluate_privacy(warehouse, table, window, keys, raw_personal)
        yield from publish_contract_table(
            context,
            warehouse,
            table,
            window,
            partition_rows,
            verdicts,
            metadata,
            more_checks=[CheckOutcome(PRIVACY_CHECK, *private, blocking=True)],
        )

    return _view


def _publisher(view: StreamFeatureView, store):
    """`publish(rows) -> created times` for `stream_update.apply_batch`."""
    if store is None:
        return lambda rows: [ingestion_time()] * len(rows)

    def publish(rows: list[dict]) -> list:
        online_rows = [
            online_store.OnlineRow(
                key=tuple(str(row[c]) for c in view.entity_columns),
                ts=row[TIMESTAMP],
                values={f: row[f] for f in view.features},
            )
            for row in rows
        ]
        return [_naive_utc(at) for at in store.write(view.name, view.ttl, online_rows)]

    return publish


def _naive_utc(at: dt.datetime | None) -> dt.datetime | None:
    """The warehouse stores timestamps without a zone, in UTC."""
    return at if at is None or at.tzinfo is None else at.astimezone(dt.UTC).replace(tzinfo=None)
