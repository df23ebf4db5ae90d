"""Where the platform's files live beyond the warehouse: the local landing folder (the embedded
default) or an S3 prefix (`ML_PLATFORM_STORAGE=s3://bucket/prefix`).

- `location`: the S3 bucket and prefix, and the keys of the layout under it;
- `aws`: credentials and clients through dagster-aws (environment, profile, or Secrets Manager);
- `duckdb_s3`: a DuckDB connection that reads and writes the prefix (httpfs, loaded offline);
- `s3_object`: a landed object read as a seekable file, for the checks that read bytes;
- `lake_export`: curated partitions written as Hive-partitioned Parquet under the prefix.
"""
