"""Labels: one module per label, each defining `LABEL` (its contract, SQL and horizon).

Discovered automatically (`ml_platform.discovery`); the asset, its contract check and its
automation come from `ml_platform.curated` (`Label`): a label partition is written once its
horizon has passed and its outcome data has settled.
"""
