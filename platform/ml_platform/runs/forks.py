"""Starts runs as forks of a process that has already imported Dagster and the libraries runs use.

Dagster's own launcher has the code server spawn a fresh Python for every run, which imports
Dagster, DuckDB, pandas and Pandera again: about 2 s of CPU per run (measured: 2.1 s user time
to import and build the definitions), while the median run of `make dev`'s catch-up works for
0.7 s. On a 2-core machine those imports were most of the catch-up's time.

Here one fork server (Python's multiprocessing "forkserver") imports the libraries once; each run
is a fork of it that executes the run exactly as `dagster api execute_run` does (same Dagster
function, instance and event log). The fork server is started by the first launch, from the
process that launches runs (the daemon), and ends with it. It is a fresh process, holding no
threads or connections of its parent, so a fork inherits nothing live.

The fork server also loads the platform's own code and definitions, and parses Dagster's storage
migrations, once (`ml_platform.runs.preload`). A fork whose platform files changed since drops the
preloaded platform and imports it afresh, so an edited asset takes effect on the next run, as
with Dagster's launcher.
"""

from __future__ import annotations

import multiprocessing
import threading

from ml_platform.dagster_private import PRELOADED_MODULES

# What every run imports before it reaches the platform's code, in the order a run imports it.
PRELOAD = [
    "dagster",
    *PRELOADED_MODULES,
    "dagster_duckdb",
    "duckdb",
    "pandas",
    "pandera.pandas",
    "pandera.ibis",  # with ibis and sqlglot: 0.3 s of the platform's own import
    "pyarrow",
    "requests",
    # Last: the platform itself, its definitions and Dagster's parsed migrations (`runs.preload`).
    "ml_platform.runs.fork_server_preload",
]

_lock = threading.Lock()
_context: multiprocessing.context.ForkServerContext | None = None


def _fork_context() -> multiprocessing.context.ForkServerContext:
    global _context
    with _lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(PRELOAD)
            _context = context
        return _context


def start_run(execute_run_args_json: str) -> int:
    """Fork a process that executes the run (serialized `ExecuteRunArgs`); returns its pid."""
    context = _fork_context()
    # Forks that have ended are joined here, so finished runs leave no entry behind.
    multiprocessing.active_children()
    process = context.Process(target=_execute_run, args=(execute_run_args_json,), daemon=False)
    process.start()
    return process.pid


def _execute_run(execute_run_args_json: str) -> None:
    """The fork's body: what `dagster api execute_run` does with its input."""
    import sys

    from dagster import deserialize_value

    from ml_platform.dagster_private import (
        ExecuteRunArgs,
        capture_interrupts,
        execute_run_command_body,
        get_instance_for_cli,
        setup_interrupt_handlers,
    )
    from ml_platform.runs import preload as run_preload

    # An edited platform takes effect now: the fork then imports it afresh instead of the preloaded one.
    run_preload.forget_if_changed()
    run_preload.cache_alembic_scripts()

    from ml_platform.runs import slot_polling

    # A step waiting for the duckdb pool takes the slot within 0.1 s of its release, asleep meanwhile.
    slot_polling.apply()
    # SIGTERM cancels the run like SIGINT (as in Dagster's CLI); a terminated run is marked canceled.
    setup_interrupt_handlers()
    with capture_interrupts():
        args = deserialize_value(execute_run_args_json, ExecuteRunArgs)
        with get_instance_for_cli(instance_ref=args.instance_ref) as instance:
            code = execute_run_command_body(
                args.run_id, instance, lambda event: None, set_exit_code_on_failure=bool(args.set_exit_code_on_failure)
            )
    sys.exit(code)
