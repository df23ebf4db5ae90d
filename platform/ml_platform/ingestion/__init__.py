"""How data gets in: one package per way of ingesting, each holding everything specific to it.

- `files/`: files landing in `landing/<source>/<YYYY-MM-DD>/` (local folder or S3 prefix), read
  by format, picked up by a landing sensor;
- `postgres/`: a PostgreSQL table extracted incrementally, picked up by a change sensor;
- `api/`: a REST API fetched by a schedule;
- `kafka/`: a Kafka topic read exactly once (offsets stored in the warehouse), requested by a lag sensor.

A kind has its spec class (`spec.py`), how it reads its source, its raw asset (`assets.py`, with
a `<kind>_raw_side` builder the code location calls) and what triggers it. `raw_asset.py` is what
every raw asset shares. Every kind writes the same raw table and ledger (`ml_platform.raw`), so
the clean layer (`ml_platform.clean`) works unchanged. A kind never imports another kind.
"""
