"""The raw layer every way of ingesting writes: what a source declares in common (`spec.SourceSpec`),
the raw table and its `ingest_ledger` (`table`), which column sets are accepted (`schema_policy`),
the kinds of values each batch brought (`value_kinds`), what could not be read (`quarantine`:
quarantined files, rejected lines and rejected messages), a stream's stored offsets and the offset
ranges of its batches (`stream`), and where a raw run writes: its own database, committed to the lake
tables, or the warehouse (`lake_run`).

It knows no way of ingesting (those are `ml_platform.ingestion.<kind>`) and no check (the checks
read these tables from `ml_platform.checks`).
"""
