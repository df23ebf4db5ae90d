"""Dagster's private APIs (`dagster._…`), behind one fence: every use the platform makes of them goes through here.

Dagster's private modules change without notice between releases, patch releases included. So
no other platform module names one: they import what they need from this module
(`from ml_platform.dagster_private import WorkerStatus`), which resolves the name in Dagster when
it is first asked for. Each name belongs to a registered use (`USES`), which says

- what the platform relies on, as checks a test can run (`requires`): the attribute exists, the
  callable still accepts the call the platform makes, the constant keeps its value, the patched
  code still reads as the patch expects;
- what turns the use off (`turned_off_by`): the dagster.yaml change or environment variable with
  which the platform runs without it, and what it then loses;
- which platform modules use it (`used_by`).

`platform_tests/test_dagster_private.py` runs every use's checks against the installed Dagster
and fails with the use, what changed and its off-switch; docs/upgrading-dagster.md lists the uses
(generated here: `python -m ml_platform.dagster_private --write-doc FILE`) and says how an upgrade is
checked. `python -m ml_platform.dagster_private` runs the same checks without pytest.

Importing this module imports nothing of Dagster: a name is resolved (its Dagster module
imported) where and when a platform module asks for it, so the import timing of the code that
uses it is kept (run forks import Dagster's execution modules in the fork, preloaded by the fork
server, see `ml_platform.runs.forks`), and a use that is turned off resolves nothing.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# --- what a use relies on: checks of the installed Dagster ------------------------------------


@dataclass(frozen=True)
class Exists:
    """`path` (a module, or an attribute of one, dotted) can be imported or looked up."""

    path: str

    def describe(self) -> str:
        return f"`{self.path}` exists"


@dataclass(frozen=True)
class Call:
    """`path` accepts the call the platform makes: `positional` arguments in this order (their
    parameter names), then `keywords` by name; any other parameter has a default."""

    path: str
    positional: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()

    def describe(self) -> str:
        arguments = [*self.positional, *(f"{name}=" for name in self.keywords)]
        return f"`{self.path}({', '.join(arguments)})`"


@dataclass(frozen=True)
class Equals:
    """`path` (a constant) has this value."""

    path: str
    value: Any

    def describe(self) -> str:
        return f"`{self.path} == {self.value!r}`"


@dataclass(frozen=True)
class IsClassmethod:
    """`path` is a classmethod of its class (what a replacement of it must be too)."""

    path: str

    def describe(self) -> str:
        return f"`{self.path}` is a classmethod"


@dataclass(frozen=True)
class SourceHas:
    """The source code of `path` still contains each of `snippets`: the behaviour a patch of it
    assumes (what it reads, what it calls), which no signature shows."""

    path: str
    snippets: tuple[str, ...]

    def describe(self) -> str:
        return f"the code of `{self.path}` has " + ", ".join(f"`{s}`" for s in self.snippets)


Requirement = Exists | Call | Equals | IsClassmethod | SourceHas


@dataclass(frozen=True)
class PrivateUse:
    """One use the platform makes of Dagster's (or a library's) private code."""

    name: str
    # Names platform modules import from this module -> what each is in Dagster (dotted path).
    exports: dict[str, str]
    relies_on: str
    requires: tuple[Requirement, ...]
    # The off-switch in a few words (the summary table), then in full: how, and what is lost.
    switch: str
    turned_off_by: str
    used_by: tuple[str, ...]
    # Whether ML_PLATFORM_DAGSTER_PRIVATE_OFF can name it (`enabled`).
    env_switch: bool = False

    def checks(self) -> tuple[Requirement, ...]:
        """`requires`, after the existence of every exported name."""
        return (*(Exists(path) for path in self.exports.values()), *self.requires)


# --- the uses ----------------------------------------------------------------------------------

LAUNCHER_OFF = (
    "Delete the `run_launcher:` block from dagster.yaml: Dagster then uses its own `DefaultRunLauncher` and never "
    "imports `ml_platform.runs.launcher`. Lost with it: forked runs (each run costs about 2 s more CPU) and the "
    "health check, so a run whose process dies (kill -9, OOM, hard stop of `dagster dev`) stays STARTED and holds "
    "the duckdb slot until someone force-terminates it (the run page's Terminate, with 'Force termination "
    "immediately')."
)
FORK_OFF = (
    "`fork_runs: false` under `run_launcher.config` in dagster.yaml: runs are launched through the code server as "
    "Dagster's launcher does (about 2 s more CPU per run); the health check stays. This also turns off "
    "fork_server_preload, alembic_script_cache and slot_polling, which only run in forked runs."
)

# Imported by the fork server ahead of any run, in the order a run imports them (`ml_platform.runs.forks.PRELOAD`).
PRELOADED_MODULES = (
    "dagster._cli.api",
    "dagster._core.execution.api",
    "dagster._core.storage.sqlite_storage",
)

_CONCURRENCY = "dagster._core.execution.plan.instance_concurrency_context"
_LAUNCHER = "dagster._core.launcher.base"
_TAGS = "dagster._core.storage.tags"
_SQLITE = "dagster._core.storage"

USES: tuple[PrivateUse, ...] = (
    PrivateUse(
        name="run_launcher",
        exports={
            "LaunchRunContext": f"{_LAUNCHER}.LaunchRunContext",
            "CheckRunHealthResult": f"{_LAUNCHER}.CheckRunHealthResult",
            "WorkerStatus": f"{_LAUNCHER}.WorkerStatus",
            "GRPC_INFO_TAG": f"{_TAGS}.GRPC_INFO_TAG",
        },
        relies_on=(
            "`LocalRunLauncher` subclasses `DefaultRunLauncher` and overrides its launch, terminate and health-check "
            "hooks, which take and return types of Dagster's private launcher module; it reaches the instance "
            "through the launcher's `_instance`, and tells a run the code server launched (which it leaves to "
            "Dagster) by the tag Dagster's launcher puts on it."
        ),
        requires=(
            Call("dagster.DefaultRunLauncher.__init__", ("self",), ("inst_data",)),
            Call("dagster.DefaultRunLauncher.launch_run", ("self", "context")),
            Call("dagster.DefaultRunLauncher.terminate", ("self", "run_id")),
            Call("dagster.DefaultRunLauncher.check_run_worker_health", ("self", "run")),
            Exists("dagster.DefaultRunLauncher.supports_check_run_worker_health"),
            Exists("dagster.DefaultRunLauncher._instance"),
            Exists(f"{_LAUNCHER}.LaunchRunContext.dagster_run"),
            Call(f"{_LAUNCHER}.CheckRunHealthResult", ("status", "msg"), ("run_worker_id",)),
            Exists(f"{_LAUNCHER}.WorkerStatus.RUNNING"),
            Exists(f"{_LAUNCHER}.WorkerStatus.SUCCESS"),
            Exists(f"{_LAUNCHER}.WorkerStatus.FAILED"),
            Equals(f"{_TAGS}.GRPC_INFO_TAG", ".dagster/grpc_info"),
            SourceHas("dagster._core.launcher.default_run_launcher.DefaultRunLauncher", ("GRPC_INFO_TAG:",)),
        ),
        switch="dagster.yaml: delete the `run_launcher:` block",
        turned_off_by=LAUNCHER_OFF,
        used_by=("ml_platform.runs.launcher",),
    ),
    PrivateUse(
        name="forked_runs",
        exports={
            "ExecuteRunArgs": "dagster._grpc.types.ExecuteRunArgs",
            "execute_run_command_body": "dagster._cli.api._execute_run_command_body",
            "get_instance_for_cli": "dagster._cli.utils.get_instance_for_cli",
            "setup_interrupt_handlers": "dagster._utils.interrupts.setup_interrupt_handlers",
            "capture_interrupts": "dagster._utils.interrupts.capture_interrupts",
        },
        relies_on=(
            "A forked run does what `dagster api execute_run` does with its input: the launcher serializes "
            "`ExecuteRunArgs` for the fork, which deserializes them, opens the instance as Dagster's CLI does, "
            "installs Dagster's interrupt handling (SIGTERM cancels the run) and calls the CLI's private "
            "`_execute_run_command_body`, whose return value is the process's exit code."
        ),
        requires=(
            Call("dagster._grpc.types.ExecuteRunArgs", ("job_origin", "run_id"), ("instance_ref",)),
            Exists("dagster._grpc.types.ExecuteRunArgs.set_exit_code_on_failure"),
            Call(
                "dagster._cli.api._execute_run_command_body",
                ("run_id", "instance", "write_stream_fn"),
                ("set_exit_code_on_failure",),
            ),
            Call("dagster._cli.utils.get_instance_for_cli", (), ("instance_ref",)),
            Call("dagster._utils.interrupts.setup_interrupt_handlers"),
            Call("dagster._utils.interrupts.capture_interrupts"),
        ),
        switch="dagster.yaml: `fork_runs: false`",
        turned_off_by=FORK_OFF + " The launcher then never resolves `ExecuteRunArgs`.",
        used_by=("ml_platform.runs.forks", "ml_platform.runs.launcher"),
    ),
    PrivateUse(
        name="fork_server_preload",
        exports={},
        relies_on=(
            "The fork server imports, by name, the private modules a run imports first (`PRELOADED_MODULES`), so "
            "forks find them loaded. A name that no longer imports costs time, not correctness: the fork server "
            "skips a preload that fails to import, and each run imports what it needs itself."
        ),
        requires=tuple(Exists(module) for module in PRELOADED_MODULES),
        switch="dagster.yaml: `fork_runs: false`",
        turned_off_by=FORK_OFF,
        used_by=("ml_platform.runs.forks",),
    ),
    PrivateUse(
        name="alembic_script_cache",
        exports={
            "get_alembic_config": f"{_SQLITE}.sql.get_alembic_config",
            "sqlite_event_log": f"{_SQLITE}.event_log.sqlite.sqlite_event_log",
            "sqlite_run_storage": f"{_SQLITE}.runs.sqlite.sqlite_run_storage",
            "sqlite_schedule_storage": f"{_SQLITE}.schedules.sqlite.sqlite_schedule_storage",
        },
        relies_on=(
            "The fork server and each forked run replace alembic's `ScriptDirectory.from_config` (process-wide) by "
            "one that keeps each parsed migration folder, keyed by its `script_location`; the fork server parses "
            "the folders of Dagster's three SQLite stores ahead, found as Dagster finds them (`get_alembic_config` "
            "on each storage module's file). Correct while the migration folders do not change within a process, "
            "which holds until Dagster itself is upgraded (and the daemon, hence the fork server, restarted)."
        ),
        requires=(
            Call(f"{_SQLITE}.sql.get_alembic_config", ("dunder_file",)),
            Exists(f"{_SQLITE}.event_log.sqlite.sqlite_event_log.__file__"),
            Exists(f"{_SQLITE}.runs.sqlite.sqlite_run_storage.__file__"),
            Exists(f"{_SQLITE}.schedules.sqlite.sqlite_schedule_storage.__file__"),
            IsClassmethod("alembic.script.ScriptDirectory.from_config"),
            Call("alembic.script.ScriptDirectory.from_config", ("config",)),
            Call("alembic.config.Config.get_alembic_option", ("self", "name")),
        ),
        switch="`ML_PLATFORM_DAGSTER_PRIVATE_OFF=alembic_script_cache`",
        turned_off_by=(
            "`ML_PLATFORM_DAGSTER_PRIVATE_OFF=alembic_script_cache` in the environment of `dagster dev` (the fork "
            "server and its forks inherit it): alembic's loading is left as it is and nothing is parsed ahead; each "
            "run parses Dagster's migrations again (part of the 0.38 s of CPU a forked run spent before its own "
            "work). Also off with `fork_runs: false`."
        ),
        used_by=("ml_platform.runs.preload",),
        env_switch=True,
    ),
    PrivateUse(
        name="slot_polling",
        exports={"instance_concurrency_context": _CONCURRENCY},
        relies_on=(
            "In each forked run, `ml_platform.runs.slot_polling` replaces the module function that spaces a waiting "
            "step's asks for a pool slot (`_calculate_timeout_interval`, looked up by the context at each ask) and "
            "the context's `interval_to_next_pending_claim_check`, reading its `_pending_claims` (steps waiting) "
            "and `_pending_timeouts` (step -> epoch time of its next ask)."
        ),
        requires=(
            Call(f"{_CONCURRENCY}._calculate_timeout_interval", ("sleep_interval", "pending_claim_count")),
            Call(f"{_CONCURRENCY}.InstanceConcurrencyContext.interval_to_next_pending_claim_check", ("self",)),
            SourceHas(
                f"{_CONCURRENCY}.InstanceConcurrencyContext",
                (
                    "self._pending_claims = set()",
                    "_calculate_timeout_interval(",
                    "self._pending_timeouts[step_key] = time.time() + interval",
                ),
            ),
        ),
        switch="`ML_PLATFORM_DAGSTER_PRIVATE_OFF=slot_polling`",
        turned_off_by=(
            "`ML_PLATFORM_DAGSTER_PRIVATE_OFF=slot_polling` in the environment of `dagster dev`: Dagster's own "
            "waiting stays (asks after 1 s, 1.1 s, 1.21 s ... up to 15 s, spinning a core in between; the demo "
            "catch-up took 134 s instead of 107 s). Off by itself, with a warning, when the two replaced names are "
            "missing; also off with `fork_runs: false`."
        ),
        used_by=("ml_platform.runs.slot_polling",),
        env_switch=True,
    ),
    PrivateUse(
        name="run_queue_priority",
        exports={
            "PARTITION_NAME_TAG": f"{_TAGS}.PARTITION_NAME_TAG",
            "PRIORITY_TAG": f"{_TAGS}.PRIORITY_TAG",
        },
        relies_on=(
            "`NewestFirstRunCoordinator` subclasses `QueuedRunCoordinator`, overriding `submit_run` and reaching the "
            "instance through `_instance`; it reads a run's partition from Dagster's system tags and writes "
            "Dagster's priority tag, which the queue and the pool slots order by."
        ),
        requires=(
            Call("dagster.QueuedRunCoordinator.submit_run", ("self", "context")),
            Exists("dagster.QueuedRunCoordinator._instance"),
            Exists("dagster.SubmitRunContext.dagster_run"),
            Equals(f"{_TAGS}.PARTITION_NAME_TAG", "dagster/partition"),
            Equals(f"{_TAGS}.PRIORITY_TAG", "dagster/priority"),
        ),
        switch="dagster.yaml: `run_coordinator` `module: dagster`, `class: QueuedRunCoordinator`",
        turned_off_by=(
            "In dagster.yaml's `run_coordinator:` block, `module: dagster` and `class: QueuedRunCoordinator` "
            "instead of `ml_platform.runs.queue`'s `NewestFirstRunCoordinator` (same config): Dagster's own queue, "
            "first submitted first launched (today's data waits behind a catch-up's older days)."
        ),
        used_by=("ml_platform.runs.queue",),
    ),
    PrivateUse(
        name="partition_range_tags",
        exports={
            "ASSET_PARTITION_RANGE_START_TAG": f"{_TAGS}.ASSET_PARTITION_RANGE_START_TAG",
            "ASSET_PARTITION_RANGE_END_TAG": f"{_TAGS}.ASSET_PARTITION_RANGE_END_TAG",
        },
        relies_on=(
            "A run over a range of partitions is asked for, and recognized, by Dagster's two range tags "
            "(`RunRequest` takes one partition key, not a range): the API catch-up sensor requests a week per run "
            "with them, the run queue reads a run's newest day from the end tag, and automation reads which days an "
            "unfinished run will write from both (`ml_platform.automation.InFlight`)."
        ),
        requires=(
            Equals(f"{_TAGS}.ASSET_PARTITION_RANGE_START_TAG", "dagster/asset_partition_range_start"),
            Equals(f"{_TAGS}.ASSET_PARTITION_RANGE_END_TAG", "dagster/asset_partition_range_end"),
        ),
        switch="`ML_PLATFORM_API_CATCH_UP=false`, and dagster.yaml's `run_coordinator` `class: QueuedRunCoordinator`",
        turned_off_by=(
            "`ML_PLATFORM_API_CATCH_UP=false` starts the API sources' catch-up sensors stopped (the days a schedule "
            "missed are then backfilled by hand); Dagster's own `QueuedRunCoordinator` in dagster.yaml stops the "
            "queue reading the end tag (first submitted, first launched)."
        ),
        used_by=("ml_platform.automation.event_log", "ml_platform.ingestion.api.catch_up", "ml_platform.runs.queue"),
    ),
    PrivateUse(
        name="cron_ticks",
        exports={"get_latest_completed_cron_tick": "dagster._utils.schedules.get_latest_completed_cron_tick"},
        relies_on=(
            "The API catch-up sensor asks Dagster's own cron arithmetic for the schedule's latest completed tick "
            "(the same the scheduler uses), so a day the schedule is about to fetch is not fetched twice."
        ),
        requires=(
            Call(
                "dagster._utils.schedules.get_latest_completed_cron_tick",
                ("cron_string", "current_time", "timezone"),
            ),
        ),
        switch="`ML_PLATFORM_API_CATCH_UP=false`",
        turned_off_by=(
            "`ML_PLATFORM_API_CATCH_UP=false`: the API sources' catch-up sensors start stopped, so the days their "
            "daily schedule missed are left to a backfill by hand."
        ),
        used_by=("ml_platform.ingestion.api.catch_up",),
    ),
    PrivateUse(
        name="range_check_targets",
        exports={
            "AssetCheckEvaluationTargetMaterializationData": (
                "dagster._core.definitions.asset_checks.asset_check_evaluation.AssetCheckEvaluationTargetMaterializationData"
            ),
        },
        relies_on=(
            "A run over a range of partitions (a single-run backfill of a partitioned table) reports each "
            "partition's check verdict as an `AssetCheckEvaluation` pointing at that partition's materialization "
            "(storage id, run id, timestamp); without the pointer the verdict does not count as checking the "
            "current materialization, and automation waits on it."
        ),
        requires=(
            Call(
                "dagster._core.definitions.asset_checks.asset_check_evaluation.AssetCheckEvaluationTargetMaterializationData",
                keywords=("storage_id", "run_id", "timestamp"),
            ),
            Call(
                "dagster.AssetCheckEvaluation",
                keywords=("asset_key", "check_name", "passed", "partition", "target_materialization_data"),
            ),
        ),
        switch="none (a range run needs it)",
        turned_off_by=(
            "None: the pointer is what makes a range run's check verdicts count, and range runs are how backfills "
            "of clean and curated tables run (BackfillPolicy.single_run). Runs of one partition never use it (the "
            "name is resolved only in a range run), so if it breaks, only range runs fail when they report their "
            "checks: fix `results.partition_check_evaluations` before upgrading."
        ),
        used_by=("ml_platform.results",),
    ),
    PrivateUse(
        name="failing_checks_metric",
        exports={
            "PartitionKeyFilter": "dagster._core.event_api.PartitionKeyFilter",
            "AssetCheckExecutionRecordStatus": (
                "dagster._core.storage.asset_check_execution_record.AssetCheckExecutionRecordStatus"
            ),
        },
        relies_on=(
            "The metrics server's `failing_checks` metric compares each partition's latest check execution with "
            "the FAILED status and reads the severity of one partition's latest failed execution, filtered by "
            "partition key."
        ),
        requires=(
            Exists("dagster._core.storage.asset_check_execution_record.AssetCheckExecutionRecordStatus.FAILED"),
            Call("dagster._core.event_api.PartitionKeyFilter", keywords=("key",)),
            Call(
                "dagster._core.storage.event_log.base.EventLogStorage.get_asset_check_partition_info", ("self", "keys")
            ),
            Call(
                "dagster._core.storage.event_log.base.EventLogStorage.get_asset_check_execution_history",
                ("self", "check_key"),
                ("limit", "status", "partition_filter"),
            ),
        ),
        switch="stop the metrics server (`python -m ml_platform metrics`)",
        turned_off_by=(
            "Not running the metrics server (`python -m ml_platform metrics`, which `make dev` starts beside "
            "Dagster): only it (`ml_platform.__main__`) imports `ml_platform.monitoring.metrics` (tested), so if "
            "these names break, "
            "/metrics is down and the platform runs on."
        ),
        used_by=("ml_platform.monitoring.metrics",),
    ),
)

BY_NAME = {use.name: use for use in USES}
EXPORTS = {name: path for use in USES for name, path in use.exports.items()}

# --- turning uses off ----------------------------------------------------------------------------

OFF_ENV = "ML_PLATFORM_DAGSTER_PRIVATE_OFF"


def turned_off() -> set[str]:
    """The uses `ML_PLATFORM_DAGSTER_PRIVATE_OFF` (comma-separated use names) turns off; a name that
    is no switchable use is ignored with a warning."""
    named = {part.strip() for part in os.environ.get(OFF_ENV, "").split(",") if part.strip()}
    unknown = sorted(n for n in named if n not in BY_NAME or not BY_NAME[n].env_switch)
    if unknown:
        switchable = sorted(use.name for use in USES if use.env_switch)
        warnings.warn(f"{OFF_ENV}: {unknown} ignored: only {switchable} can be turned off here", stacklevel=2)
    return named - set(unknown)


def enabled(use: str) -> bool:
    """Whether the use (one with `env_switch`) is on in this process."""
    if use not in BY_NAME or not BY_NAME[use].env_switch:
        raise KeyError(f"{use!r} is not a Dagster private use that {OFF_ENV} can turn off")
    return use not in turned_off()


# --- resolving names -----------------------------------------------------------------------------


def resolve(path: str) -> Any:
    """The module or attribute at a dotted path: the longest importable module prefix, then attributes.

    Raises LookupError saying which part is missing."""
    parts = path.split(".")
    obj, depth = None, len(parts)
    while depth > 0:
        module = ".".join(parts[:depth])
        try:
            obj = importlib.import_module(module)
            break
        except ModuleNotFoundError as exc:
            # Only "this module does not exist": an import error inside an existing module is news.
            if exc.name is None or not (module == exc.name or module.startswith(exc.name + ".")):
                raise
            depth -= 1
    if obj is None:
        raise LookupError(f"no module `{parts[0]}`")
    for index in range(depth, len(parts)):
        if not hasattr(obj, parts[index]):
            raise LookupError(f"`{'.'.join(parts[:index])}` has no attribute `{parts[index]}`")
        obj = getattr(obj, parts[index])
    return obj


def __getattr__(name: str) -> Any:
    """`from ml_platform.dagster_private import X`: X resolved in Dagster now, then kept.

    A name the installed Dagster lacks raises ImportError, as the import of Dagster's module
    would have (the fork server, for one, skips a preload that raises ImportError)."""
    if name not in EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r} (no registered Dagster private use)")
    try:
        value = resolve(EXPORTS[name])
    except LookupError as exc:
        use = next(use for use in USES if name in use.exports)
        raise ImportError(
            f"{name} ({EXPORTS[name]}) is not in the installed dagster {dagster_version()}: {exc}. "
            f"Dagster private use {use.name!r}; to run without it: {use.turned_off_by}",
            name=EXPORTS[name],
        ) from exc
    globals()[name] = value
    return value


# --- checking the installed Dagster ------------------------------------------------------------


def _signature_problem(requirement: Call, obj: Any) -> str | None:
    import inspect

    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError) as exc:
        return f"`{requirement.path}` has no signature to check ({exc})"
    parameters = list(signature.parameters.values())
    generated = parameters and all(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters)
    if generated and isinstance(obj, type):
        # A class whose constructor is generated from its annotated fields (Dagster's @record).
        names = list(
            dict.fromkeys(n for klass in reversed(obj.__mro__) for n in vars(klass).get("__annotations__", {}))
        )
        shown = f"fields ({', '.join(names)})"
        keyword_ok = all(k in names for k in requirement.keywords)
        if names[: len(requirement.positional)] != list(requirement.positional) or not keyword_ok:
            return f"`{requirement.path}` now has {shown}; the platform calls {requirement.describe()}"
        return None
    positional = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    problem = None
    if positional[: len(requirement.positional)] != list(requirement.positional):
        problem = "its positional parameters differ"
    else:
        try:
            signature.bind(*requirement.positional, **{k: k for k in requirement.keywords})
        except TypeError as exc:
            problem = str(exc)
    if problem is None:
        return None
    return f"`{requirement.path}` is now `{signature}` ({problem}); the platform calls {requirement.describe()}"


def _problem(requirement: Requirement, found: Callable[[str], Any]) -> str | None:
    import inspect

    try:
        obj = found(requirement.path)
    except LookupError as exc:
        return f"`{requirement.path}` is gone: {exc}"
    if isinstance(requirement, Call):
        return _signature_problem(requirement, obj)
    if isinstance(requirement, Equals) and obj != requirement.value:
        return f"`{requirement.path}` is now {obj!r}, the platform relies on {requirement.value!r}"
    if isinstance(requirement, IsClassmethod):
        owner, _, attribute = requirement.path.rpartition(".")
        try:
            static = inspect.getattr_static(found(owner), attribute)
        except (LookupError, AttributeError):
            static = None
        if not isinstance(static, classmethod):
            return f"`{requirement.path}` is no longer a classmethod (it is {type(static).__name__})"
    if isinstance(requirement, SourceHas):
        try:
            source = inspect.getsource(obj)
        except (OSError, TypeError) as exc:
            return f"the code of `{requirement.path}` cannot be read ({exc})"
        missing = [s for s in requirement.snippets if s not in source]
        if missing:
            return f"the code of `{requirement.path}` no longer has {', '.join(f'`{s}`' for s in missing)}"
    return None


def problems(use: PrivateUse, found: Callable[[str], Any] = resolve) -> list[str]:
    """What of `use.checks()` the installed Dagster (as `found` resolves paths) no longer matches."""
    return [p for p in (_problem(r, found) for r in use.checks()) if p is not None]


def dagster_version() -> str:
    from importlib.metadata import version

    return version("dagster")


def report(use: PrivateUse, found: list[str]) -> str:
    """The message for a use whose checks failed: the use, what changed, what turns it off."""
    lines = [
        f"Dagster private use {use.name!r} (used by {', '.join(use.used_by)}) no longer matches "
        f"the installed dagster {dagster_version()}:",
        *(f"  - {p}" for p in found),
        f"What the platform relies on: {use.relies_on}",
        f"To run without it: {use.turned_off_by}",
        "(docs/upgrading-dagster.md; the registry is ml_platform/dagster_private.py)",
    ]
    return "\n".join(lines)


# --- the list in docs/upgrading-dagster.md ---------------------------------------------------

DOC_START = "<!-- private-uses: generated by `python -m ml_platform.dagster_private --write-doc FILE`; do not edit -->"
DOC_END = "<!-- end of private-uses -->"


def markdown() -> str:
    """Every use with what it relies on and its off-switch, as docs/upgrading-dagster.md lists them."""
    lines = [DOC_START, "", "| use | used by | turned off by |", "|---|---|---|"]
    lines += [f"| `{u.name}` | {', '.join(f'`{m}`' for m in u.used_by)} | {u.switch} |" for u in USES]
    lines.append("")
    for use in USES:
        lines += [f"### `{use.name}`", "", f"Used by: {', '.join(f'`{m}`' for m in use.used_by)}.", ""]
        if use.exports:
            names = ", ".join(f"`{name}` (`{path}`)" for name, path in use.exports.items())
            lines += [f"Names: {names}.", ""]
        lines += [f"Relies on: {use.relies_on}", ""]
        lines += [f"- {r.describe()}" for r in use.requires]
        lines += ["", f"**Turned off by:** {use.turned_off_by}", ""]
    lines.append(DOC_END)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m ml_platform.dagster_private", description=__doc__.split("\n")[0])
    parser.add_argument("--doc", action="store_true", help="print the list of uses for docs/upgrading-dagster.md")
    parser.add_argument("--write-doc", metavar="FILE", help="replace the list of uses in FILE (between its markers)")
    args = parser.parse_args(argv)
    if args.doc:
        print(markdown())
        return 0
    if args.write_doc:
        from pathlib import Path

        path = Path(args.write_doc)
        text = path.read_text()
        start, end = text.index(DOC_START), text.index(DOC_END) + len(DOC_END)
        path.write_text(text[:start] + markdown() + text[end:])
        return 0
    failed = 0
    for use in USES:
        found = problems(use)
        failed += bool(found)
        print(report(use, found) if found else f"ok  {use.name}", end="\n\n" if found else "\n")
    print(f"dagster {dagster_version()}: {len(USES) - failed} of {len(USES)} private uses match")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
