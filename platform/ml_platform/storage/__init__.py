"""Where the platform's files live beyond the warehouse: the local data folder (the embedded
default) or an S3 prefix (`ML_PLATFORM_STORAGE=s3://bucket/prefix`).

- `location`: the S3 bucket and prefix, and the keys of the layout under it;
- `aws`: credentials and clients through dagster-aws (environment, profile, or Secrets Manager);
- `s3_object`: a landed object read as a seekable file, for the checks that read bytes;
- `landing_upload`: a local folder's files landed on the prefix;
- `artifacts`: files the platform makes besides tables (fitted models), written whole.

DuckDB's own access to the prefix is the warehouse's (`ml_platform.warehouse.s3`); curated
partitions are exported by the curated layer (`ml_platform.curated.export`).
"""
