"""How a Pandera model becomes a table's contract: DDL, UI column schema, SQL row rules, in-place validation.

The models themselves live with what they describe: a source's in its module under
`ml_platform.sources`, a feature table's under `ml_platform.features`. `lineage` holds the
columns every cleaned table shares.
"""
