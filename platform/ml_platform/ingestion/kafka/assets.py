"""Factory: a Kafka source spec becomes its raw asset (with the `schema` and `messages` checks),
lag sensor and resource.

A run of `raw_<name>` works on one working copy from the offsets it starts from to the offsets it
stores (`raw.lake_run`: its own database committed to the lake tables in one catalog commit, or one
warehouse transaction; `ingest.py` says what it reads): the offsets, rows, rejected messages,
ledger rows and batch ranges commit together or not at all, so a run killed at any point, or
failing because the broker went away, writes nothing and the next run reads the same messages.
Like every raw asset, the run is in the warehouse pool, one writer at a time, and the lag sensor
requests one run at a time: the offsets it starts from cannot move under it.
"""

import datetime as dt

import dagster as dg

from ml_platform.checks.messages import evaluate_messages, messages_check_spec
from ml_platform.dagster_previews import acknowledged
from ml_platform.ingestion.kafka.client import KafkaResource, KafkaSourceError, kafka_resource
from ml_platform.ingestion.kafka.ingest import Plan, plan_new, plan_reread, read_messages, write
from ml_platform.ingestion.kafka.sensor import OFFSETS_METADATA, lag_sensor
from ml_platform.ingestion.kafka.spec import KafkaSourceSpec
from ml_platform.ingestion.raw_asset import RawSide, publish_raw, raw_asset_args, raw_outcome
from ml_platform.partitions import daily_partitions, run_window, window_label
from ml_platform.raw import stream
from ml_platform.raw.lake_run import raw_run
from ml_platform.raw.quarantine import REJECTED_MESSAGES_TABLE, create_rejected_messages_table
from ml_platform.raw.table import ingestion_time, schema_versions_label


def kafka_raw_asset(spec: KafkaSourceSpec) -> dg.AssetsDefinition:
    partitions_def = daily_partitions()
    args = raw_asset_args(
        spec,
        kinds={"kafka"},
        description=(
            f"Messages of Kafka topic `{spec.topic}` ({spec.value_format} values), read exactly once: one partition"
            " per landing day (the UTC day a batch was read), values kept as sent, with topic, partition, offset,"
            " timestamp and key as lineage. The offsets read are stored in the warehouse (`stream_offsets`) in the"
            " same transaction as the rows; a run of today reads the lag, a run of an earlier day re-reads exactly"
            " the offset ranges it read. Unusable messages go to `rejected_messages` with their reason."
        ),
        check_specs=[messages_check_spec(dg.AssetKey(spec.raw_table), partitions_def)],
        required_resource_keys={"warehouse", spec.resource_key},
        # The lag sensor retries a failed micro-batch itself (its offset ranges once more, with the
        # stream views of the run) and never runs two at once: automation's own retry of a raw
        # partition would launch a run outside it, without the views.
        retried_by_automation=False,
    )

    # Single-run range backfills: one transaction per range (see dagster_previews).
    with acknowledged("backfill_policy"):

        @dg.asset(**args)
        def _raw(context: dg.AssetExecutionContext):
            warehouse = context.resources.warehouse
            source: KafkaResource = getattr(context.resources, spec.resource_key)
            window = run_window(context)
            ingested_at = ingestion_time()
            today = ingested_at.date()
            try:
                with source.reader(spec) as reader, raw_run(warehouse, spec, window, context.run_id) as run:
                    con = run.con
                    stream.create_stream_tables(con, spec)
                    create_rejected_messages_table(con)
                    for table in (stream.BATCHES_TABLE, REJECTED_MESSAGES_TABLE):
                        run.keeps(table)
                    run.keeps_all(stream.OFFSETS_TABLE)
                    run.keeps_ledger()
                    plan = Plan()
                    if window[0] < today:
                        plan_reread(con, spec, reader, (window[0], min(window[1], today - dt.timedelta(days=1))), plan)
                    if window[0] <= today <= window[1]:
                        plan_new(con, spec, reader, today, ingested_at, plan)
                    if plan.reread:
                        run.keeps_own(spec.raw_table)  # days read again are replaced, today's batches added
                    else:
                        run.appends(spec.raw_table)  # only new batches: nothing of raw is read
                    read = read_messages(con, reader, plan.batches)
                    ledger = write(con, spec, plan, context.run_id, ingested_at, today)
                    outcome = raw_outcome(con, spec, window, [evaluate_messages(con, spec, window)])
                    offsets = stream.stored_offsets(con, spec, spec.topic)
            except KafkaSourceError as exc:
                # Raised outside the working copy: nothing was committed.
                raise dg.Failure(str(exc)) from None
            outcome = run.counted(outcome)
            rows = sum(entry["rows"] for entry in ledger)
            rejected = read - rows
            lost = sum(end - first for first, end in plan.lost.values())
            metadata = {
                "topic": spec.topic,
                "messages_read": read,
                "rows_ingested": rows,
                "messages_rejected": rejected,
                "offsets_lost": lost,
                # What librdkafka reported while it read (a broker restarting): the read went on.
                "broker_errors_during_read": len(reader.errors),
                "mode": _mode(plan),
                "read_ranges": dg.MetadataValue.json(
                    [
                        {"landing_date": b.landing_date.isoformat(), "partition": b.partition, "first": b.first}
                        | {"last": b.end - 1}
                        for b in plan.batches
                    ]
                ),
                # The offsets stored once this run committed: the lag sensor measures from them.
                OFFSETS_METADATA: dg.MetadataValue.json({str(p): o for p, o in sorted(offsets.items())}),
                "schema_versions": schema_versions_label(ledger),
                **run.metadata(),
            }
            context.log.info(
                f"{spec.raw_table} {window_label(window)}: {read} messages of {spec.topic} read"
                f" ({rows} rows, {rejected} rejected, {lost} offsets lost to retention)"
            )
            yield from publish_raw(context, spec, outcome, metadata)

    return _raw


def _mode(plan: Plan) -> str:
    modes = (["re-read"] if plan.reread else []) + (["lag"] if plan.watermarks else [])
    return " + ".join(modes) or "nothing"


def kafka_raw_side(spec: KafkaSourceSpec) -> RawSide:
    raw = kafka_raw_asset(spec)
    return RawSide(assets=[raw], sensors=[lag_sensor(spec, raw)], resources={spec.resource_key: kafka_resource(spec)})
