"""The scale-out benchmarks' data: one landing day of synthetic events as CSV bytes, the same for
every option (`scaleout_options.py`, `spark_probe.py`). DuckDB only, so both venvs can use it."""

from __future__ import annotations

import duckdb

HEADER = b"event_id,user_id,event_type,event_time,amount,landing_day,payload\n"


def csv_day(day: int, rows: int) -> bytes:
    """`rows` events of 2026-10-<day> (no header), deterministic."""
    con = duckdb.connect()
    return (
        con.execute(
            f"""
            SELECT string_agg(line, chr(10) ORDER BY i) FROM (
              SELECT i, concat_ws(',', 'e{day}_' || i, 'u' || (i * 7919 % 50000), ['view','click','buy'][i % 3 + 1],
                       '2026-10-{day:02d}T' || lpad((i % 24)::VARCHAR, 2, '0') || ':00:00Z', (i % 997) / 10.0,
                       '2026-10-{day:02d}', repeat('x', i % 64)) AS line
              FROM range({rows}) r(i))
            """
        )
        .fetchone()[0]
        .encode()
    )
