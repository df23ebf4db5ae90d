"""A notebook that keeps querying the warehouse while the platform writes it: the concurrency test's reader.

Run as a script in its own process (DuckDB's file lock is per process, so a reader in the test's
own process would not compete the way a notebook does):

    python platform_tests/warehouse_reader.py <warehouse.duckdb> <report.json>

It waits for the file to exist, then loops until its stdin is closed: open the warehouse the way a
notebook does (`ml_platform.warehouse.connect(path, read_only=True)`, which retries while a writer
holds the file), run a query, close, pause briefly. Each attempt is recorded with its start (Unix
time), how long it took from asking for the connection to having the answer, how much of that was
opening the file (a writer holding it makes `connect` wait and retry), and the error if it
failed. The report is written as JSON when stdin closes.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

# Between queries: shorter than any write step (0.2 s and up), so every write meets a query.
PAUSE_SECONDS = 0.05
RETRY_SECONDS = 60.0  # a lock held longer than this fails the query (and the test)
QUERY = """
SELECT (SELECT count(*) FROM duckdb_tables()),
       (SELECT coalesce(sum(estimated_size), 0) FROM duckdb_tables())
"""


def main(warehouse: Path, report: Path) -> None:
    from ml_platform.warehouse import connect

    stop = threading.Event()
    # The test closes our stdin to stop us.
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    while not warehouse.exists() and not stop.is_set():
        time.sleep(0.05)
    attempts = []
    while not stop.is_set():
        started = time.time()
        clock = time.monotonic()
        error, connected = None, None
        try:
            con = connect(warehouse, read_only=True, retry_seconds=RETRY_SECONDS)
            connected = time.monotonic() - clock
            try:
                con.execute(QUERY).fetchall()
            finally:
                con.close()
        except Exception as exc:  # recorded: the test asserts there are none
            error = f"{type(exc).__name__}: {exc}"
        attempts.append(
            {"start": started, "seconds": time.monotonic() - clock, "connect_seconds": connected, "error": error}
        )
        stop.wait(PAUSE_SECONDS)
    report.write_text(json.dumps(attempts))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))
    main(Path(sys.argv[1]), Path(sys.argv[2]))
