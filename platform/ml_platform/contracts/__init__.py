"""What a table promises, and the one writer that keeps the promise.

- `table_contract`: a Pandera model becomes the table's DDL, the UI's column schema, SQL row
  rules and in-place validation;
- `lineage`: the columns every clean table carries; `personal`: the personal-data marks;
- `quality_rules`: the thresholds a source or table declares for its quality checks;
- `freshness`: how often a source is expected to land (`FreshnessRule`), also as Dagster's policy;
- `writer`: `ContractTable`, the one partitioned table writer: create from the contract, replace a
  window atomically, refuse rows outside it, count per partition.

The models themselves live with what they describe, under `ml_platform.declarations`.
"""
