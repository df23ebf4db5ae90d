"""What many test modules need: ticking a sensor, and reading what a run recorded.

- `tick` evaluates a sensor once, as the daemon would, and returns its tick data
  (`run_requests`, `skip_message`, `cursor`).
- `run_metadata` reads an asset's run-level materialization metadata; in a single-run range
  backfill every partition carries it, plus its own `dagster/partition_row_count` and figures,
  which `partition_metadata` returns per partition.
- `Ticker` evaluates the automation conditions tick after tick, as the automation sensor does.
- `create_table`, `entity_frame`, `connect`: the point-in-time property tests' inputs in DuckDB.
- `run_check` is a run's check result for the whole run (the only one of a one-partition run,
  the unpartitioned one of a range); `partition_checks` the per-partition ones of a range.
- `edit_lake_table` changes a lake table behind the platform's back (another engine's write).
- `pseudonym` is what curated tables hold for a raw user id, under the tests' key; `raw_ids`
  shows pseudonyms in query rows as the ids they stand for.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import dagster as dg
import duckdb
import pandas as pd

from ml_platform.results import PLOTTED_PREFIX


def _per_partition(key: str) -> bool:
    """Metadata that differs per partition of a range run."""
    return key == "dagster/partition_row_count" or key.startswith(("partition_", PLOTTED_PREFIX))


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, sensor: str, cursor: str | None = None):
    """One evaluation of `sensor`; `.run_requests`, `.skip_message` and `.cursor` say what it did."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
    return defs.resolve_sensor_def(sensor).evaluate_tick(context)


def _materializations(result: dg.ExecuteInProcessResult, asset: str | None):
    events = result.get_asset_materialization_events()
    if asset is not None:
        events = [e for e in events if e.asset_key == dg.AssetKey(asset)]
    assert events, f"no materialization of {asset or 'any asset'}"
    return [e.materialization for e in events]


def run_metadata(result: dg.ExecuteInProcessResult, asset: str | None = None) -> dict[str, Any]:
    """The asset's run-level metadata values (the same on every partition the run wrote)."""
    materializations = _materializations(result, asset)
    shared = [
        {k: v.value for k, v in m.metadata.items() if len(materializations) == 1 or not _per_partition(k)}
        for m in materializations
    ]
    assert all(m == shared[0] for m in shared), shared
    return shared[0]


def partition_metadata(
    result: dg.ExecuteInProcessResult, asset: str | None = None, plotted: bool = False
) -> dict[str, dict[str, Any]]:
    """Each partition's own metadata values, by partition key; the quality checks' plotted figures
    (`quality/...`, see results.py) only with `plotted`."""
    return {
        m.partition: {k: v.value for k, v in m.metadata.items() if plotted or not k.startswith(PLOTTED_PREFIX)}
        for m in _materializations(result, asset)
    }


def _evaluations(result: dg.ExecuteInProcessResult, asset: str | None, check: str | None) -> list:
    return [
        e
        for e in result.get_asset_check_evaluations()
        if (asset is None or e.asset_key == dg.AssetKey(asset)) and (check is None or e.check_name == check)
    ]


def contract_evaluations(result: dg.ExecuteInProcessResult) -> list:
    """The run's `contract` check evaluations (clean tables also carry quality checks)."""
    return _evaluations(result, None, "contract")


def run_check(
    result: dg.ExecuteInProcessResult, asset: str | None = None, check: str | None = None
) -> dg.AssetCheckEvaluation:
    """The check result covering the whole run (of `check`, when the asset has several)."""
    evaluations = _evaluations(result, asset, check)
    if len(evaluations) > 1:
        evaluations = [e for e in evaluations if e.partition is None]
    [evaluation] = evaluations
    return evaluation


def partition_checks(
    result: dg.ExecuteInProcessResult, asset: str | None = None, check: str | None = None
) -> dict[str, dg.AssetCheckEvaluation]:
    """The per-partition check results of a range run, by partition key."""
    return {e.partition: e for e in _evaluations(result, asset, check) if e.partition is not None}


class Ticker:
    """The automation sensor's view: evaluations that carry the cursor from tick to tick.

    As the sensor does, each tick's requests become runs at once: one run per partition key
    with every asset requested for it (`submit`), which the platform's conditions then see in
    progress, as they would see the daemon's. Nothing executes them: the test runs what it wants
    with `runner.run`, after which the partitions it wrote are no longer in progress (their latest
    planned run is the test's, and the next tick ends a submitted run all of whose partitions the
    test ran). A partition the test never runs stays in its run, in progress, unless the test
    cancels the runs (`cancel_submitted`).

    `leave_out`: assets whose conditions are not evaluated (a test about one chain of assets
    leaves out others downstream of the same tables). `now`: the evaluation time (default: now).
    """

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance, leave_out: tuple[str, ...] = (), now=None):
        self.defs, self.instance, self.cursor, self.now = defs, instance, None, now
        self.selection = dg.AssetSelection.all() - dg.AssetSelection.assets(*leave_out) if leave_out else None
        self.submitted: list[str] = []

    def tick(self) -> dict[dg.AssetKey, set[str | None]]:
        self._end_superseded()
        result = dg.evaluate_automation_conditions(
            defs=self.defs,
            instance=self.instance,
            cursor=self.cursor,
            asset_selection=self.selection,
            evaluation_time=self.now,
        )
        self.cursor = result.cursor
        requested = {}
        for key in self.defs.resolve_asset_graph().get_all_asset_keys():
            partitions = set(result.get_requested_partitions(key))
            if partitions:
                requested[key] = partitions
        assert result.total_requested == sum(len(p) for p in requested.values())
        self.submit(requested)
        return requested

    def cancel_submitted(self) -> None:
        """Cancel every run `submit` made that is still in progress, as an operator terminating
        queued runs before running partitions by hand: a canceled partition is held until
        something it reads changes (`ml_platform.automation.Recover`)."""
        for run_id in self.submitted:
            run = self.instance.get_run_by_id(run_id)
            if run is not None and not run.is_finished:
                self.instance.report_run_canceled(run)
        self.submitted.clear()

    def _end_superseded(self) -> None:
        """End (as canceled) each submitted run that the test ran instead: every partition it was
        to write was planned by a later run since. The daemon would have run it; left in progress
        it would hold its partitions (`ml_platform.automation.InFlight` sees every unfinished run)."""
        for run_id in self.submitted:
            run = self.instance.get_run_by_id(run_id)
            if run is None or run.is_finished:
                continue
            partition = run.tags.get("dagster/partition")
            latest = {
                key: self.instance.get_latest_planned_materialization_info(key, partition)
                for key in run.asset_selection or ()
            }
            if all(info is not None and info.run_id != run_id for info in latest.values()):
                self.instance.report_run_canceled(run)

    def submit(self, requested: dict[dg.AssetKey, set[str | None]]) -> None:
        """Queue the runs the sensor would launch: one per partition key, its assets together."""
        by_partition: dict[str | None, set[dg.AssetKey]] = {}
        for key, partitions in requested.items():
            for partition in partitions:
                by_partition.setdefault(partition, set()).add(key)
        job = self.defs.resolve_implicit_global_asset_job_def()
        for partition, keys in by_partition.items():
            run = self.instance.create_run_for_job(
                job_def=job,
                asset_selection=keys,
                tags={"dagster/partition": partition} if partition else {},
                # Started, not queued: a queued run needs a code location's origin.
                status=dg.DagsterRunStatus.STARTED,
            )
            self.submitted.append(run.run_id)


# --- point-in-time property tests: inputs built in an in-memory DuckDB ---------------------------


def create_table(con: duckdb.DuckDBPyConnection, name: str, types: dict[str, str], rows: list[dict]) -> None:
    columns = ", ".join(f'"{c}" {t}' for c, t in types.items())
    con.execute(f'CREATE TABLE "{name}" ({columns})')
    if rows:
        placeholders = ", ".join("?" for _ in types)
        con.executemany(f'INSERT INTO "{name}" VALUES ({placeholders})', [[r[c] for c in types] for r in rows])


def entity_frame(rows: list[dict], types: dict[str, str]) -> pd.DataFrame:
    """A DataFrame of entity rows: object columns for strings (None kept), datetime64 for times."""
    data = {}
    for column, kind in types.items():
        values = [r[column] for r in rows]
        if kind == "TIMESTAMP":
            data[column] = pd.Series(pd.to_datetime(values), dtype="datetime64[ns]")
        elif kind == "VARCHAR":
            data[column] = pd.Series(values, dtype=object)
        else:
            data[column] = pd.Series(values, dtype="int64")
    return pd.DataFrame(data)


def connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    return con


# The key every test runs with (conftest's data_dir, platform_server): a test value, not a secret.
TEST_PSEUDONYM_KEY = "test-pseudonym-key-0123456789abcdef0123456789"


def pseudonym(raw: str, key: str = TEST_PSEUDONYM_KEY) -> str:
    """What curated tables hold for the raw id `raw`, computed in Python (hmac), independently of
    the platform's SQL: 'p_' and the first 32 hex digits of HMAC-SHA256(key, raw)."""
    return "p_" + hmac.new(key.encode(), raw.encode(), hashlib.sha256).hexdigest()[:32]


def raw_ids(rows: list[tuple], *ids: str, column: int = 0) -> list[tuple]:
    """Query rows with the pseudonym of each of `ids` in `column` shown as that id, so expectations
    stay readable ("u1"); any other value becomes ("not a pseudonym of", value), so a raw id that
    reached the table still fails the comparison."""
    names = {pseudonym(raw): raw for raw in ids}
    return [
        (*row[:column], names.get(row[column], ("not a pseudonym of", row[column])), *row[column + 1 :]) for row in rows
    ]


def edit_lake_table(
    table: str, statement: str, scope: tuple[str, str] | None = None, partition_column="landing_date"
) -> None:
    """Run `statement` (on `table`) on a working copy of lake table `table` (its rows of `scope`)
    and commit it: another engine's edit, which the warehouse's next write transaction reads."""
    from ml_platform.lakehouse import tables
    from ml_platform.lakehouse.scan import scan_sql
    from ml_platform.lakehouse.working_copy import WorkingCopy, run_database

    with run_database("edit") as con:
        lake = scan_sql(tables.load_table(table))
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM {lake} WHERE FALSE")
        copy = WorkingCopy(con)
        copy.diff(table, partition_column, scope)
        con.execute(statement)
        copy.commit("edit")
