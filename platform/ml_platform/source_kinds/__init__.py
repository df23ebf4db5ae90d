"""One package per kind of source (files, PostgreSQL, REST API), each holding everything specific to it.

A kind has its spec class (`spec.py`), how it reads its source, its raw asset (`assets.py`) and
what triggers it (a sensor or a schedule). What all kinds share is in `ml_platform.ingestion`;
the clean layer, the same for every kind, is in `ml_platform.clean`.
"""
