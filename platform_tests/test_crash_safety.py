"""Crash safety: a run killed with SIGKILL while it writes leaves every table old or new, never a mix.

One day of demo events (version 1 of its three files) is materialized through raw, clean and
features; then one file is rewritten (version 2). Uninterrupted reference runs of
`raw_events`, `clean_events` and `user_daily_features` for that day, one layer after the other,
give each layer's warehouse before and after its write. Then each layer's run starts again from
its "before" warehouse, in a real process (`crash_runner`), and is killed with SIGKILL: as its
transaction opens, halfway through the transaction's statements, as soon as COMMIT has put
bytes in DuckDB's WAL (a torn WAL), halfway through COMMIT and the checkpoint DuckDB runs on
close (usually a complete WAL), and once COMMIT has returned. After each kill the DuckDB file
must open (recovering from the WAL the kill left), the whole warehouse must hash to exactly its
before or exactly its after content (all tables together: a new raw partition beside the old
ledger would be a mix), and a re-run must give exactly the reference's after content.

This is the warehouse file's crash safety (DuckDB's WAL and its recovery), so every table here is a
table of that file (`ML_PLATFORM_LAKE_TABLES=false`). A lake table's commit killed at every point is
test_lakehouse.py's; a kill between a lake commit and the warehouse's is the gap docs/scaling.md
names ("What is not on the lake yet").
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from crash_runner import Kill, RunOutcome, RunServer
from ml_platform.demo.generator import generate

DAY = "2026-01-10"
# Large enough that each write takes a measurable time on a 2-core machine (transactions of
# about 0.4 s for raw, 1 s for clean, 0.1 s for features; WALs of 1 to 13 MB), small enough to
# keep the module under a minute.
EVENTS_PER_DAY = 50_000
REWRITTEN_FILE = f"events_{DAY}_01.csv"
# Columns that legitimately differ between two runs over the same input, left out of the hash:
# when the raw layer read the file (raw rows, ingest_ledger, and carried into clean rows and
# quarantine rows), when a row was quarantined, when a file was (quarantined_files), and when a
# partition was profiled (partition_profiles). Every other column is compared, including the
# ledger's file size and modification time, so a half-replaced ledger shows.
VOLATILE_COLUMNS = ("ingested_at", "quarantined_at", "recorded_at", "profiled_at")
# The layers in the order they run, and the tables each one's write replaces part of.
LAYERS = {
    "raw_events": {"raw_events", "ingest_ledger"},
    # The day's quality profile is written in the clean write's transaction, with its rows.
    "clean_events": {"clean_events", "quarantine_events", "partition_profiles"},
    "user_daily_features": {"user_daily_features"},
}

State = dict[str, tuple[int, str]]


def warehouse_state(path: Path) -> State:
    """(rows, order-independent content hash) of every table, volatile columns left out.

    Opens read-write, as the next run would: DuckDB replays (or discards) the WAL a killed run
    left, and fails to open if recovery fails. A sum of 64-bit row hashes as HUGEINT counts
    duplicated rows (an XOR would cancel them) and cannot overflow.
    """
    con = duckdb.connect(str(path))
    try:
        state = {}
        tables = con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary ORDER BY 1").fetchall()
        for (table,) in tables:
            columns = [
                f'"{name}"'
                for (name,) in con.execute(
                    "SELECT column_name FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index", [table]
                ).fetchall()
                if name not in VOLATILE_COLUMNS
            ]
            rows, digest = con.execute(
                f'SELECT count(*), coalesce(sum(hash({", ".join(columns)})), 0)::VARCHAR FROM "{table}"'
            ).fetchone()
            state[table] = (rows, digest)
        return state
    finally:
        con.close()


@dataclass
class Layer:
    """A layer's warehouse before and after its uninterrupted reference run, and that run."""

    asset: str
    before: Path
    after: Path
    before_state: State
    after_state: State
    reference: RunOutcome


@dataclass
class Lab:
    """The run server, the warehouse file its runs write, and each layer's reference."""

    server: RunServer
    warehouse: Path
    layers: dict[str, Layer]

    def restore(self, snapshot: Path) -> None:
        """Put a warehouse snapshot in place (no WAL: every snapshot was taken from a closed file)."""
        self.wal.unlink(missing_ok=True)
        shutil.copyfile(snapshot, self.warehouse)

    @property
    def wal(self) -> Path:
        return self.warehouse.with_name(self.warehouse.name + ".wal")

    def run_ok(self, asset: str, partition: str | None = DAY) -> RunOutcome:
        outcome = self.server.run(asset, partition)
        assert outcome.succeeded, f"{asset} {partition}: {outcome}; see {self.server.log_path}"
        return outcome


def _demo_landing(scratch: Path, seed: int) -> Path:
    """The demo generator's landing folder for DAY (events, users snapshot, ...) under `scratch`."""
    generate(scratch, days=1, events_per_day=EVENTS_PER_DAY, seed=seed, end_date=dt.date.fromisoformat(DAY))
    return scratch / "landing"


def build_lab(root: Path, server: RunServer) -> Lab:
    """Version 1 of the day through every layer, version 2 landed, then the reference runs."""
    data = server.data_dir
    v1 = _demo_landing(root / "v1", seed=1)
    v2 = _demo_landing(root / "v2", seed=2)
    for source in ("events", "users"):
        shutil.copytree(v1 / source, data / "landing" / source)
    lab = Lab(server, data / "warehouse.duckdb", {})
    # Version 1 of the day, through every layer: the content the first kills must leave.
    lab.run_ok("raw_users")
    lab.run_ok("clean_users", None)
    for asset in LAYERS:
        lab.run_ok(asset)
    # The producer rewrites one file (renamed into place, as writers land files).
    staged = data / "landing" / "events" / DAY / f".{REWRITTEN_FILE}"
    shutil.copyfile(v2 / "events" / DAY / REWRITTEN_FILE, staged)
    os.replace(staged, staged.with_name(REWRITTEN_FILE))

    snapshots = root / "snapshots"
    snapshots.mkdir()
    before = snapshots / "0.duckdb"
    shutil.copyfile(lab.warehouse, before)
    for n, asset in enumerate(LAYERS, start=1):
        reference = lab.run_ok(asset)
        after = snapshots / f"{n}.duckdb"
        shutil.copyfile(lab.warehouse, after)
        lab.layers[asset] = Layer(asset, before, after, warehouse_state(before), warehouse_state(after), reference)
        before = after
    return lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("crash")
    server = RunServer(root / "data", root / "crash_runner.log", {"ML_PLATFORM_LAKE_TABLES": "false"})
    try:
        yield build_lab(root, server)
    finally:
        server.close()


def kill_points(reference: RunOutcome, wal: Path) -> list[Kill]:
    """Spread over the write as the reference run timed it: the transaction's body (begin →
    commit), COMMIT writing the WAL, the checkpoint on close (commit → committed), and after."""
    body, commit = reference.span("begin", "commit"), reference.span("commit", "committed")
    return [
        Kill("begin"),
        Kill("begin", body / 2),
        # As soon as COMMIT has put bytes in the WAL: usually a torn WAL, which recovery must discard.
        Kill("commit", written=wal),
        # Usually in the checkpoint: a complete WAL, which recovery must replay.
        Kill("commit", commit / 2),
        Kill("committed"),
    ]


@pytest.mark.e2e
@pytest.mark.parametrize("asset", list(LAYERS))
def test_killed_write_leaves_old_or_new_content_and_rerun_converges(lab: Lab, asset: str):
    layer = lab.layers[asset]
    changed = {t for t in layer.after_state if layer.before_state.get(t) != layer.after_state[t]}
    # Every table the layer writes changes, so a mix of old and new would show; no other does.
    assert changed == LAYERS[asset], (changed, layer.before_state, layer.after_state)

    left = []
    for kill in kill_points(layer.reference, lab.wal):
        lab.restore(layer.before)
        outcome = lab.server.run(asset, DAY, kill=kill)
        assert outcome.killed, f"{kill}: the run was not killed: {outcome}"
        wal_bytes = lab.wal.stat().st_size if lab.wal.exists() else 0
        state = warehouse_state(lab.warehouse)
        if state == layer.before_state:
            content = "old"
        elif state == layer.after_state:
            content = "new"
        else:
            mixed = {t: (layer.before_state.get(t), layer.after_state.get(t), v) for t, v in state.items()}
            raise AssertionError(f"{kill}: the warehouse holds neither the old nor the new content: {mixed}")
        # What the markers say the kill interrupted pins the content exactly, except inside COMMIT.
        if "commit" not in outcome.markers:
            assert content == "old", f"{kill}: killed before COMMIT, yet the new content is there"
        if "committed" in outcome.markers:
            assert content == "new", f"{kill}: killed after COMMIT returned, yet the old content is back"
        left.append((str(kill), sorted(outcome.markers), wal_bytes, content))

        # Bit for bit: this also needs every computed value to be the same whatever the order
        # DuckDB's threads add rows in (see the sums in features/user_daily_features.py).
        lab.run_ok(asset)
        assert warehouse_state(lab.warehouse) == layer.after_state, f"{kill}: the re-run did not converge"

    print(f"\n{asset}: (kill, markers, WAL bytes left, content) {left}")
    assert {content for *_, content in left} == {"old", "new"}, left
    # Kills landed inside the write (begun, not committed), and at least one left a WAL that
    # opening the file had to recover from.
    assert any("begin" in markers and "committed" not in markers for _, markers, *_ in left), left
    assert any(wal_bytes > 0 for _, _, wal_bytes, _ in left), left
