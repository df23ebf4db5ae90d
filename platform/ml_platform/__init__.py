"""ML data platform on Dagster and DuckDB: landing files -> raw -> clean -> curated features."""
