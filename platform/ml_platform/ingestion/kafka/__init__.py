"""A Kafka topic of JSON records, read exactly once into raw with its offsets in the warehouse, requested by a lag sensor."""

from ml_platform.ingestion.kafka.spec import KafkaSourceSpec

__all__ = ["KafkaSourceSpec"]
