"""The Kafka source kind: the records of one topic, read exactly once into raw.

Each message's value is one JSON object (`value_format="json"`), the record the contract's
columns are read from, as a JSON Lines file's line is. Where the broker is is a deployment
setting: the spec names the environment variable that holds the bootstrap servers
(`bootstrap_servers_env`, `ML_PLATFORM_KAFKA_BOOTSTRAP_SERVERS` by default), never the value; until
it is set the source's lag sensor skips and says so.

The raw partition of a batch is its landing day: the UTC day it was read, as a landed file's
folder is its landing day, so where a message lands never depends on its (producer-set, possibly
late or wrong) event time. The clean table partitions by event day, with the source's
`late_tolerance_days`, exactly as for files (docs/streaming.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

from ml_platform.raw.spec import SourceSpec

# Avro with a schema registry would be a second format here (docs/streaming.md).
ValueFormat = Literal["json"]
VALUE_FORMATS: tuple[str, ...] = get_args(ValueFormat)
ENV_NAME_PATTERN = re.compile(r"^[A-Z_][A-Z0-9_]*$")
# Kafka's own rule for topic names.
TOPIC_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
DEFAULT_BOOTSTRAP_ENV = "ML_PLATFORM_KAFKA_BOOTSTRAP_SERVERS"
# The broker's own default limit on a message (message.max.bytes): a larger value is not a record.
DEFAULT_MAX_MESSAGE_BYTES = 1_048_588


@dataclass(frozen=True, kw_only=True)
class KafkaSourceSpec(SourceSpec):
    topic: str
    # Environment variable holding the bootstrap servers ("host:port,host:port").
    bootstrap_servers_env: str = DEFAULT_BOOTSTRAP_ENV
    value_format: ValueFormat = "json"
    # A message whose value is larger is rejected (recorded in rejected_messages), never read.
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    # How long a run may take to reach the high watermarks it took at its start, broker restarts
    # included; past it the run fails and writes nothing (the next run starts from the same offsets).
    read_timeout_seconds: float = 120.0
    # How long a metadata or watermark request may wait for the broker (a run, the lag sensor).
    request_timeout_seconds: float = 10.0
    # At most this many messages per partition in one run: a backlog is read in several runs,
    # each a transaction of bounded memory (a 2.3 M-message batch ran out of DuckDB's memory limit).
    max_messages_per_partition: int = 200_000
    # A micro-batch starts once this many messages wait, or once the first of them has waited this
    # long (the lag sensor): a busy topic is read as fast as runs go, a trickle every half minute.
    micro_batch_messages: int = 1_000
    micro_batch_wait_seconds: float = 30.0
    # The clean day is rebuilt at most every five minutes (see SourceSpec.clean_schedule).
    clean_schedule: str | None = "*/5 * * * *"

    def __post_init__(self):
        super().__post_init__()
        if not self.is_partitioned:
            raise ValueError(
                f"source {self.name}: a Kafka source needs event_time_column and partition_column (the clean "
                "table is partitioned by event day)"
            )
        if not TOPIC_PATTERN.match(self.topic) or self.topic in (".", ".."):
            raise ValueError(f"source {self.name}: {self.topic!r} is not a Kafka topic name")
        if not ENV_NAME_PATTERN.match(self.bootstrap_servers_env):
            raise ValueError(f"source {self.name}: {self.bootstrap_servers_env!r} is not an environment variable name")
        if self.value_format not in VALUE_FORMATS:
            raise ValueError(f"source {self.name}: value_format must be one of {VALUE_FORMATS}")
        if self.micro_batch_messages < 1 or self.micro_batch_wait_seconds < 0:
            raise ValueError(
                f"source {self.name}: micro_batch_messages must be positive, micro_batch_wait_seconds >= 0"
            )
        if self.max_messages_per_partition < 1:
            raise ValueError(f"source {self.name}: max_messages_per_partition must be positive")
        if self.max_message_bytes < 1:
            raise ValueError(f"source {self.name}: max_message_bytes must be positive")
        if self.read_timeout_seconds <= 0 or self.request_timeout_seconds <= 0:
            raise ValueError(f"source {self.name}: read_timeout_seconds and request_timeout_seconds must be positive")

    @property
    def resource_key(self) -> str:
        return f"{self.name}_kafka"

    @property
    def landing_place(self) -> str:
        return f"Kafka topic {self.topic} (read into {self.raw_table})"
