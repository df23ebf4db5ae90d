"""The fork server preloads the platform and Dagster's parsed migrations (ml_platform.runs.preload),
and an edited platform still takes effect on the next run.

Each test runs in a Python process of its own: preloading and forgetting modules changes
`sys.modules`, which the test process's other tests rely on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path


def _python(code: str, tmp_path: Path) -> dict:
    """Run `code` in a fresh Python with a data folder of its own; it prints one JSON object."""
    env = {**os.environ, "ML_PLATFORM_DATA_DIR": str(tmp_path / "data"), "DAGSTER_HOME": str(tmp_path / "home")}
    (tmp_path / "home").mkdir(exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_fork_of_the_fork_server_starts_with_the_platform_loaded(tmp_path: Path):
    out = tmp_path / "fork.json"
    result = _python(
        f"""
        import json
        from ml_platform.runs import forks as run_forks
        # What a fork of the fork server finds before it imports anything, as a run's fork would.
        code = (
            "import json, sys, threading\\n"
            "from ml_platform.runs import preload as run_preload\\n"
            "json.dump({{'definitions_loaded': 'ml_platform.definitions' in sys.modules,"
            " 'preloaded': run_preload._preloaded is not None,"
            " 'migration_folders': len(run_preload._script_directories),"
            " 'threads': threading.active_count()}}, open({str(out)!r}, 'w'))"
        )
        process = run_forks._fork_context().Process(target=exec, args=(code,))
        process.start()
        process.join(60)
        print(json.dumps({{"exitcode": process.exitcode}}))
        """,
        tmp_path,
    )
    assert result == {"exitcode": 0}
    # Dagster's three SQLite stores (runs, events, schedules) share one migration folder.
    assert json.loads(out.read_text()) == {
        "definitions_loaded": True,
        "preloaded": True,
        "migration_folders": 1,
        "threads": 1,
    }


def test_an_edited_platform_is_imported_afresh(tmp_path: Path):
    watched = tmp_path / "package"
    watched.mkdir()
    (watched / "asset.py").write_text("ROWS = 1\n")
    result = _python(
        f"""
        import json, pathlib, sys, threading
        from ml_platform.runs import preload as run_preload
        run_preload.PACKAGE_DIR = pathlib.Path({str(watched)!r})  # stands for the package's files
        run_preload.preload()
        from ml_platform import definitions
        first = definitions._process_definitions()
        threads = threading.active_count()
        unchanged = run_preload.forget_if_changed()
        kept = sys.modules["ml_platform.definitions"] is definitions
        pathlib.Path({str(watched / "asset.py")!r}).write_text("ROWS = 22\\n")
        changed = run_preload.forget_if_changed()
        dropped = [m for m in sys.modules if m.startswith("ml_platform.") and m != "ml_platform.runs.preload"]
        from ml_platform import definitions as again
        fresh = again._process_definitions() is not first and again is not definitions
        print(json.dumps(dict(threads=threads, unchanged=unchanged, kept=kept, changed=changed,
                              dropped=dropped, fresh=fresh)))
        """,
        tmp_path,
    )
    assert result == {"threads": 1, "unchanged": False, "kept": True, "changed": True, "dropped": [], "fresh": True}


def test_dagster_migrations_are_parsed_once_and_read_the_same(tmp_path: Path):
    result = _python(
        """
        import json
        from alembic.script import ScriptDirectory
        from dagster._core.storage.runs.sqlite import sqlite_run_storage
        from dagster._core.storage.sql import get_alembic_config
        config = get_alembic_config(sqlite_run_storage.__file__)
        uncached = ScriptDirectory.from_config(config)
        from ml_platform.runs import preload as run_preload
        run_preload.cache_alembic_scripts()
        run_preload.cache_alembic_scripts()  # applying it twice wraps once
        once = ScriptDirectory.from_config(config)
        print(json.dumps(dict(
            same_object=once is ScriptDirectory.from_config(get_alembic_config(sqlite_run_storage.__file__)),
            fresh_before=uncached is not ScriptDirectory.from_config(config) and uncached is not once,
            head=once.as_revision_number("head") == uncached.as_revision_number("head"),
        )))
        """,
        tmp_path,
    )
    assert result == {"same_object": True, "fresh_before": True, "head": True}
