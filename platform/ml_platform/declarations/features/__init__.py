"""Curated ML feature tables: one module per table, each defining `TABLE` (its contract and SQL).

Discovered automatically (`ml_platform.discovery`); adding a feature table is adding a module
here. The asset, its contract check and its automation come from `ml_platform.curated`.
"""
