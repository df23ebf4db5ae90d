"""What the fork server does once so that no run has to (see `ml_platform.runs.forks`).

Measured in `make dev`'s catch-up (about 90 runs on 2 cores, the machine 85 % busy): a forked
run used 0.38 s of CPU before doing anything of its own, and profiled per run, two things stood
out, both the same in every run:

- Loading the platform: importing `ml_platform` and building its definitions.
- Opening Dagster's instance: for each of its four SQLite databases (runs, schedules, the event
  index and the run's own event file) Dagster compares the database's schema revision with the
  newest of its migrations, and alembic finds that one by executing every migration script again
  (the same folder each time).

Importing this module, as the fork server does at start, does both ahead: it imports and builds
the platform's definitions, and keeps alembic's parsed migration folders (`ScriptDirectory`), which
only change when Dagster is upgraded, so each run reads them from memory.

An edited platform must still take effect on the next run, as with a freshly spawned run. The
package's files are fingerprinted (path, size, modification time) when preloaded; a run whose
fork finds a different fingerprint drops the preloaded modules and imports them afresh
(`forget_if_changed`).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

from ml_platform import dagster_private

log = logging.getLogger(__name__)

PACKAGE = "ml_platform"
PACKAGE_DIR = Path(__file__).resolve().parent

# Alembic's parsed migration folders, by folder (the fork server's, inherited by every fork).
_script_directories: dict = {}
_lock = threading.Lock()
# The package's fingerprint when its definitions were preloaded (None: nothing preloaded).
_preloaded: tuple | None = None


def package_fingerprint(root: Path | None = None) -> tuple:
    """(path, size, mtime) of every file under the package (`root`), sorted: any edit, addition or
    removal changes it. About 2 ms for the platform's files."""
    root = root or PACKAGE_DIR
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            try:
                st = os.stat(os.path.join(folder, name))
            except OSError:
                continue
            files.append((os.path.relpath(os.path.join(folder, name), root), st.st_size, st.st_mtime_ns))
    return tuple(sorted(files))


def cache_alembic_scripts() -> None:
    """Make alembic's `ScriptDirectory.from_config` return one parsed folder per migration folder."""
    if not dagster_private.enabled("alembic_script_cache"):
        return
    from alembic.script import ScriptDirectory

    if getattr(ScriptDirectory.from_config, "_ml_platform_cached", False):
        return
    original = ScriptDirectory.from_config.__func__

    def from_config(cls, config):
        key = (cls, config.get_alembic_option("script_location"))
        with _lock:
            if key not in _script_directories:
                _script_directories[key] = original(cls, config)
            return _script_directories[key]

    from_config._ml_platform_cached = True
    ScriptDirectory.from_config = classmethod(from_config)


def _warm_alembic() -> None:
    """Parse the migrations of Dagster's SQLite stores now, in the fork server."""
    if not dagster_private.enabled("alembic_script_cache"):
        return
    from alembic.script import ScriptDirectory

    from ml_platform.dagster_private import (
        get_alembic_config,
        sqlite_event_log,
        sqlite_run_storage,
        sqlite_schedule_storage,
    )

    # One folder today (the three stores share it); each is named so a split would be warmed too.
    for module in (sqlite_event_log, sqlite_run_storage, sqlite_schedule_storage):
        ScriptDirectory.from_config(get_alembic_config(module.__file__)).as_revision_number("head")


def preload() -> None:
    """Import and build the platform's definitions, and parse Dagster's migrations, in this process.

    A platform that does not load (a syntax error being edited) is not preloaded: runs then import
    it themselves and report the error as they would have.
    """
    global _preloaded
    cache_alembic_scripts()
    _warm_alembic()
    fingerprint = package_fingerprint()
    try:
        from ml_platform import definitions

        # What a run's code loading asks for: the definitions (cached per process) and their repository.
        definitions._process_definitions().get_repository_def()
    except Exception as exc:  # the run will meet the same error and report it in the run's log
        log.warning("the platform was not preloaded for runs: %s", exc)
        forget()
        return
    _preloaded = fingerprint


def forget() -> None:
    """Drop the platform's modules (and with them its built definitions) from this process."""
    global _preloaded
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        if name != __name__:
            del sys.modules[name]
    _preloaded = None


def forget_if_changed() -> bool:
    """In a forked run: drop the preloaded platform when its files changed since; True if dropped."""
    if _preloaded is None or package_fingerprint() == _preloaded:
        return False
    forget()
    return True
