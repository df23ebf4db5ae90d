"""A PostgreSQL table, extracted incrementally by an updated_at high-water mark, polled by a change sensor."""

from ml_platform.ingestion.postgres.spec import PostgresSourceSpec

__all__ = ["PostgresSourceSpec"]
