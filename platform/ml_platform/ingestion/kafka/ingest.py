"""A Kafka raw run's work, all of it on the working copy the caller holds (`raw.lake_run`).

- Today's landing day reads the lag (`plan_new`): for every partition of the topic, from the
  offset the warehouse holds (0 for a partition never read: a new one, or a new source) to the
  high watermark taken now. A stored offset below the log start offset means retention deleted
  messages before they were read: the range is recorded as `lost` (the raw `messages` check
  turns ERROR) and reading starts at the log start.
- An earlier landing day re-reads exactly the offset ranges `stream_batches` recorded for it
  (`plan_reread`), with each batch's own name and ingestion time: the same raw rows again. A
  range that retention has deleted since fails the run, and the day is kept as it was.

Then `write` judges every message set-based in DuckDB (a message that is not a JSON object, is
too large, or has no readable event time is rejected with a reason into `rejected_messages`),
appends the good ones to raw with their topic, partition, offset, timestamp and key, writes one
ledger row per batch, the batches' ranges and the new offsets. The caller commits all of it at
once: a run killed at any point leaves the warehouse as it was, and the next run reads the
same offsets again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import duckdb

from ml_platform.ingestion.kafka.client import NOT_UTF8, OVERSIZE, TOMBSTONE, KafkaSourceError, TopicReader
from ml_platform.ingestion.kafka.spec import KafkaSourceSpec
from ml_platform.raw import stream
from ml_platform.raw.quarantine import forget_rejected_messages, record_rejected_messages
from ml_platform.raw.table import (
    INGESTED,
    PARTLY_READ,
    UNREADABLE,
    detect_schema_version,
    record_batch,
    replace_raw_window,
)
from ml_platform.warehouse import sql
from ml_platform.warehouse.sql import DateWindow

LEDGER_FORMAT = "kafka"
_MESSAGES, _BATCHES, _JUDGED = "_kafka_messages", "_kafka_batches", "_kafka_judged"


@dataclass(frozen=True)
class Batch:
    """One partition's offset range [first, end) and where its rows land."""

    landing_date: dt.date
    partition: int
    first: int
    end: int
    source_file: str
    ingested_at: dt.datetime


@dataclass
class Plan:
    """What a run reads, and what it records about the topic."""

    batches: list[Batch] = field(default_factory=list)
    # Partition -> [stored offset, log start offset): deleted before they were read.
    lost: dict[int, tuple[int, int]] = field(default_factory=dict)
    # Partition -> the next offset to read once this run commits (new reads only).
    next_offsets: dict[int, int] = field(default_factory=dict)
    # Partition -> (log start, high watermark) when the run started.
    watermarks: dict[int, tuple[int, int]] = field(default_factory=dict)
    # The earlier landing days this run reads again.
    reread: DateWindow | None = None


def plan_new(
    con: duckdb.DuckDBPyConnection,
    spec: KafkaSourceSpec,
    reader: TopicReader,
    landing_date: dt.date,
    ingested_at: dt.datetime,
    plan: Plan,
) -> None:
    """Add the lag of every partition, up to the high watermarks taken now, to `plan`."""
    stored = stream.stored_offsets(con, spec, spec.topic)
    partitions = reader.partitions()
    gone = sorted(set(stored) - set(partitions))
    if gone:
        raise KafkaSourceError(
            f"{spec.name}: {reader.where()} has no partition(s) {gone}, which the warehouse has read: the topic"
            " was deleted and created again. Nothing was written; see docs/streaming.md"
        )
    plan.watermarks = reader.watermarks(partitions)
    for partition in partitions:
        low, high = plan.watermarks[partition]
        start = stored.get(partition, 0)
        if start > high:
            raise KafkaSourceError(
                f"{spec.name}: {reader.where()} partition {partition} ends at offset {high}, but the warehouse has"
                f" read up to {start}: the topic was deleted and created again. Nothing was written;"
                " see docs/streaming.md"
            )
        if start < low:
            plan.lost[partition] = (start, low)
            start = low
        end = min(high, start + spec.max_messages_per_partition)  # the rest is the next run's
        if start < end:
            plan.batches.append(
                Batch(
                    landing_date,
                    partition,
                    start,
                    end,
                    stream.batch_name(spec.topic, partition, start, end),
                    ingested_at,
                )
            )
        if end != stored.get(partition):
            plan.next_offsets[partition] = end


def plan_reread(
    con: duckdb.DuckDBPyConnection, spec: KafkaSourceSpec, reader: TopicReader, days: DateWindow, plan: Plan
) -> None:
    """Add every range the landing days in `days` read to `plan`; KafkaSourceError when one is no
    longer (fully) on the broker."""
    recorded = stream.read_batches(con, spec, days)
    plan.reread = days
    if not recorded:
        return
    topics = {row[1] for row in recorded}
    if topics != {spec.topic}:
        raise KafkaSourceError(
            f"{spec.name}: the landing days {days[0]}..{days[1]} were read from {sorted(topics)}, not {spec.topic}:"
            " a re-read would not give the same rows"
        )
    partitions = set(reader.partitions())
    marks = reader.watermarks(sorted({row[2] for row in recorded} & partitions))
    for day, _, partition, first, end, source_file, ingested_at in recorded:
        if partition not in partitions or first < marks[partition][0]:
            low = marks[partition][0] if partition in marks else None
            raise KafkaSourceError(
                f"{spec.name}: {source_file} of landing day {day} cannot be read again: "
                + (f"partition {partition} no longer exists" if low is None else f"the log now starts at {low}")
                + f" (deleted by retention since). Raw {day} is kept as it was; nothing was written"
            )
        plan.batches.append(Batch(day, partition, first, end, source_file, ingested_at))


def read_messages(con: duckdb.DuckDBPyConnection, reader: TopicReader, batches: list[Batch]) -> int:
    """Read every batch's messages into the temp table `_kafka_messages`; returns how many.

    A partition's ranges are read in rounds, one range per partition per round, so a day whose
    ranges follow each other (the usual case) is one round."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {_MESSAGES} (partition INTEGER, "offset" BIGINT, kafka_timestamp TIMESTAMP,
            kafka_key VARCHAR, value VARCHAR, size_bytes BIGINT, state VARCHAR)"""
    )
    spans: dict[int, list[list[int]]] = {}
    for batch in sorted(batches, key=lambda b: (b.partition, b.first)):
        runs = spans.setdefault(batch.partition, [])
        if runs and runs[-1][1] == batch.first:
            runs[-1][1] = batch.end  # contiguous: one read
        else:
            runs.append([batch.first, batch.end])
    count = 0
    for round_ in range(max((len(r) for r in spans.values()), default=0)):
        ranges = {p: tuple(runs[round_]) for p, runs in spans.items() if round_ < len(runs)}
        for arrow in reader.read(ranges):
            con.register("_kafka_arrow", arrow)
            try:
                con.execute(f"INSERT INTO {_MESSAGES} SELECT * FROM _kafka_arrow")
            finally:
                con.unregister("_kafka_arrow")
            count += arrow.num_rows
    return count


def _reason_sql(spec: KafkaSourceSpec) -> str:
    """Why a message is not a record the source can use; NULL when it is."""
    value = "m.value"
    valid = f"CASE WHEN json_valid({value}) THEN {value} END"
    names = spec.names_for(spec.event_time_column)
    texts = [sql.json_text(valid, name) for name in names]
    time_text = texts[0] if len(texts) == 1 else f"COALESCE({', '.join(texts)})"
    limit = spec.max_message_bytes
    return f"""CASE
      WHEN m.state = {sql.literal(TOMBSTONE)} THEN 'no value (a tombstone)'
      WHEN m.state = {sql.literal(OVERSIZE)}
        THEN 'over the size limit: ' || m.size_bytes || ' bytes > {limit}'
      WHEN m.state = {sql.literal(NOT_UTF8)} THEN 'not UTF-8 text'
      WHEN NOT json_valid({value}) THEN 'not JSON'
      WHEN json_type({valid}) <> 'OBJECT' THEN 'not a JSON object: ' || lower(json_type({valid}))
      WHEN {time_text} IS NULL THEN {sql.literal(f"no event time ({spec.event_time_column})")}
      WHEN {sql.utc_timestamp(time_text, spec.event_time_zone)} IS NULL
        THEN {sql.literal(f"event time unreadable ({spec.event_time_column}): ")} || left({time_text}, 100)
    END"""


def write(
    con: duckdb.DuckDBPyConnection,
    spec: KafkaSourceSpec,
    plan: Plan,
    run_id: str | None,
    ingested_at: dt.datetime,
    today: dt.date,
) -> list[dict]:
    """Judge the messages read and write raw rows, rejected messages, ledger rows, the batches'
    ranges and the new offsets (in the caller's transaction). Returns the ledger summaries."""
    raw = sql.ident(spec.raw_table)
    if plan.reread is not None:
        # The days re-read are replaced with what is read again (same names, same ingestion times).
        replace_raw_window(con, spec, plan.reread)
        forget_rejected_messages(con, spec, plan.reread)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {_BATCHES} (landing_date DATE, partition INTEGER, first_offset BIGINT,
            end_offset BIGINT, source_file VARCHAR, ingested_at TIMESTAMP)"""
    )
    if plan.batches:
        con.executemany(
            f"INSERT INTO {_BATCHES} VALUES (?, ?, ?, ?, ?, ?)",
            [(b.landing_date, b.partition, b.first, b.end, b.source_file, b.ingested_at) for b in plan.batches],
        )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {_JUDGED} AS
        SELECT b.landing_date, b.source_file, b.ingested_at, m."offset" - b.first_offset + 1 AS source_row,
               m.partition, m."offset", m.kafka_timestamp, m.kafka_key, m.value, m.size_bytes,
               {_reason_sql(spec)} AS reason
        FROM {_MESSAGES} m JOIN {_BATCHES} b
          ON m.partition = b.partition AND m."offset" >= b.first_offset AND m."offset" < b.end_offset"""
    )
    figures = con.execute(
        f"""SELECT b.landing_date, b.partition, b.first_offset, b.end_offset, b.source_file, b.ingested_at,
                   count(j.source_row), count(j.source_row) FILTER (WHERE j.reason IS NULL),
                   count(j.source_row) FILTER (WHERE j.reason IS NOT NULL),
                   coalesce(sum(j.size_bytes), 0),
                   list_sort(list_distinct(flatten(list(json_keys(CAST(CASE WHEN j.reason IS NULL THEN j.value END AS JSON)))
                       FILTER (WHERE j.reason IS NULL))))
            FROM {_BATCHES} b LEFT JOIN {_JUDGED} j USING (source_file, landing_date)
            GROUP BY ALL ORDER BY b.landing_date, b.partition, b.first_offset"""
    ).fetchall()
    versions = {(row[0], row[4]): detect_schema_version(spec, row[10] or []) for row in figures}
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _kafka_versions (landing_date DATE, source_file VARCHAR, schema_version VARCHAR)"
    )
    if versions:
        con.executemany("INSERT INTO _kafka_versions VALUES (?, ?, ?)", [(d, f, v) for (d, f), v in versions.items()])
    con.execute(
        f"""INSERT INTO {raw}
        SELECT j.landing_date, j.source_file, j.source_row, j.ingested_at, v.schema_version, j.value::JSON,
               {sql.literal(spec.topic)}, j.partition, j."offset", j.kafka_timestamp, j.kafka_key
        FROM {_JUDGED} j JOIN _kafka_versions v USING (landing_date, source_file)
        WHERE j.reason IS NULL
        ORDER BY j.landing_date, j.source_file, j.source_row"""
    )
    record_rejected_messages(
        con,
        spec,
        f"""SELECT landing_date, source_file, {sql.literal(spec.topic)} AS topic, partition, "offset", kafka_timestamp,
                   kafka_key, size_bytes, reason, value AS content, ingested_at AS recorded_at
            FROM {_JUDGED} WHERE reason IS NOT NULL ORDER BY landing_date, partition, "offset\"""",
    )
    ledger = []
    batch_rows = []
    reread_counts = {}
    for day, partition, first, end, source_file, batch_ingested_at, messages, rows, rejected, size, columns in figures:
        if messages:
            status = INGESTED if not rejected else (PARTLY_READ if rows else UNREADABLE)
            ledger.append(
                record_batch(
                    con,
                    spec,
                    landing_date=day,
                    source_file=source_file,
                    format=LEDGER_FORMAT,
                    row_count=rows,
                    columns=list(columns or []),
                    schema_version=versions[(day, source_file)],
                    ingested_at=batch_ingested_at,
                    size_bytes=size,
                    rows_rejected=rejected,
                    status=status,
                )
            )
        if plan.reread is not None and plan.reread[0] <= day <= plan.reread[1]:
            reread_counts[source_file] = (messages, rows, rejected)
        else:
            batch_rows.append(
                (
                    spec.name,
                    day,
                    spec.topic,
                    partition,
                    first,
                    end,
                    stream.READ,
                    source_file,
                    messages,
                    rows,
                    rejected,
                    batch_ingested_at,
                    run_id,
                )
            )
    batch_rows += [
        (spec.name, today, spec.topic, partition, first, end, stream.LOST, None, 0, 0, 0, ingested_at, run_id)
        for partition, (first, end) in sorted(plan.lost.items())
    ]
    stream.record_batches(con, batch_rows)
    if reread_counts:
        stream.update_read_batches(con, spec, plan.reread, reread_counts)
    stream.store_offsets(con, spec, spec.topic, plan.next_offsets, ingested_at, run_id)
    for table in (_MESSAGES, _BATCHES, _JUDGED, "_kafka_versions"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return ledger
