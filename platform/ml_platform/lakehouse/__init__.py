"""The lakehouse: tables as Apache Iceberg tables in a SQL catalog, written a partition at a time
from any process that reaches the catalog and the files (docs/scaling.md says why Iceberg).

- `catalog`: the catalog (pyiceberg's SQL catalog: a SQLite file under the data folder by default,
  PostgreSQL when `ML_PLATFORM_CATALOG_URL` says so) and where table files live (the data folder,
  or the S3 prefix);
- `tables`: a table made from the columns of the rows it will hold, partitioned by a date column,
  and widened when new columns come;
- `replace`: one partition replace (delete the days, add their files) in one catalog commit, redone a
  bounded number of times when another commit got there first;
- `scan`: the SQL that reads a table (at its current snapshot or a given one) in DuckDB, as the
  snapshot's data files;
- `staged`: a write from inside a warehouse transaction, committed just before it commits;
- `housekeeping`: expiring old snapshots and removing files no snapshot names.

The files a commit adds are written before it, by DuckDB, under new names: a commit only swaps
metadata, and a writer killed at any moment leaves the table as it was or as the commit made it.
"""
