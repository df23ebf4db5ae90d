"""What every source shares, whatever its kind: the spec base, the raw table and ingest ledger,
the schema policy, the raw asset's common shape, and discovery of the source modules."""
