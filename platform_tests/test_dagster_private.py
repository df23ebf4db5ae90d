"""Dagster's private APIs stay behind one fence (ml_platform.dagster_private), and the installed
Dagster still has what each registered use relies on.

Run this file first after bumping Dagster (docs/upgrading-dagster.md): a failure names the use,
what changed in Dagster and what turns the use off. The other tests here make sure the checks can
fail, that no other platform module names a private Dagster module, that the registry says
truly where each use is, that the off-switches it names work, and that the upgrade doc lists
every use as the registry does.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import dagster as dg
import pytest
import yaml

from ml_platform import dagster_private as fence
from ml_platform.dagster_private import Call, Equals, IsClassmethod, PrivateUse, SourceHas

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "platform" / "ml_platform"
FENCE = PACKAGE / "dagster_private.py"
DOC = ROOT / "docs" / "upgrading-dagster.md"

# --- the installed Dagster matches every registered use ---------------------------------------


@pytest.mark.parametrize("use", fence.USES, ids=lambda use: use.name)
def test_installed_dagster_still_has_what_the_use_relies_on(use: PrivateUse):
    found = fence.problems(use)
    assert not found, fence.report(use, found)


def test_every_exported_name_resolves_to_what_the_registry_names():
    for name, path in fence.EXPORTS.items():
        assert getattr(fence, name) is fence.resolve(path), name


# --- the checks can fail ---------------------------------------------------------------------------


class _Patched:
    @classmethod
    def from_config(cls, config):
        return config

    def claim(self):
        return "no timeouts here"


def _moved(run_id, instance, write_stream_fn, *, set_exit_code_on_failure, new_required):
    return 0


def _record_like():
    class Record:  # a constructor generated from annotated fields, like Dagster's @record
        storage_id: int
        run_id: str
        timestamp: float

        def __init__(self, *args, **kwargs):
            pass

    return Record


FAKE = {
    "fake.exec": _moved,
    "fake.TAG": "dagster/priority_v2",
    "fake.Patched": _Patched,
    "fake.Patched.from_config": _Patched.from_config,
    "fake.Patched.claim": _Patched.claim,
    "fake.Record": _record_like(),
}


def _fake_found(path: str):
    if path not in FAKE:
        raise LookupError(f"`{path.rpartition('.')[0]}` has no attribute `{path.rpartition('.')[2]}`")
    return FAKE[path]


FAKE_USE = PrivateUse(
    name="fake_use",
    exports={"gone": "fake.gone"},
    relies_on="a fake use for testing the checker",
    requires=(
        Call("fake.exec", ("run_id", "instance", "write_stream_fn"), ("set_exit_code_on_failure",)),
        Equals("fake.TAG", "dagster/priority"),
        IsClassmethod("fake.Patched.claim"),
        IsClassmethod("fake.Patched.from_config"),
        SourceHas("fake.Patched.claim", ("self._pending_timeouts[step_key]",)),
        Call("fake.Record", keywords=("storage_id", "run_id", "timestamp")),
        Call("fake.Record", ("storage_id", "run_id")),
    ),
    switch="FAKE_SWITCH=off",
    turned_off_by="FAKE_SWITCH=off",
    used_by=("ml_platform.nowhere",),
)


def test_the_checker_reports_each_kind_of_mismatch():
    found = fence.problems(FAKE_USE, found=_fake_found)
    assert len(found) == 5, found
    gone, call, value, classmethod_, source = found
    assert "`fake.gone` is gone" in gone
    assert "`fake.exec` is now" in call and "new_required" in call and "set_exit_code_on_failure=" in call
    assert "'dagster/priority_v2'" in value and "'dagster/priority'" in value
    assert "`fake.Patched.claim` is no longer a classmethod" in classmethod_
    assert "self._pending_timeouts[step_key]" in source
    # A record-like class is checked by its fields: all there above; one field gone now.
    FAKE["fake.Record"].__annotations__.pop("run_id")
    try:
        record_found = fence.problems(FAKE_USE, found=_fake_found)
    finally:
        FAKE["fake.Record"] = _record_like()
    assert [p for p in record_found if "fake.Record" in p] == [
        "`fake.Record` now has fields (storage_id, timestamp); the platform calls "
        "`fake.Record(storage_id=, run_id=, timestamp=)`",
        "`fake.Record` now has fields (storage_id, timestamp); the platform calls `fake.Record(storage_id, run_id)`",
    ]
    report = fence.report(FAKE_USE, found)
    assert report.startswith("Dagster private use 'fake_use' (used by ml_platform.nowhere) no longer matches")
    assert "To run without it: FAKE_SWITCH=off" in report and "a fake use for testing the checker" in report


def test_a_changed_dagster_fails_the_real_checks(monkeypatch):
    """The registry's own checks against a Dagster whose private names changed, as an upgrade might."""
    from dagster._cli import api
    from dagster._core.storage import tags

    monkeypatch.setattr(api, "_execute_run_command_body", _moved)
    monkeypatch.setattr(tags, "PRIORITY_TAG", "dagster/run_priority")
    monkeypatch.delattr(tags, "GRPC_INFO_TAG")
    forked = fence.problems(fence.BY_NAME["forked_runs"])
    assert len(forked) == 1 and "dagster._cli.api._execute_run_command_body" in forked[0], forked
    queue = fence.problems(fence.BY_NAME["run_queue_priority"])
    assert queue == [
        "`dagster._core.storage.tags.PRIORITY_TAG` is now 'dagster/run_priority', the platform relies on 'dagster/priority'"
    ]
    launcher = fence.problems(fence.BY_NAME["run_launcher"])
    assert launcher[0] == (
        "`dagster._core.storage.tags.GRPC_INFO_TAG` is gone: `dagster._core.storage.tags` has no attribute `GRPC_INFO_TAG`"
    ), launcher


def test_resolve_says_which_part_is_missing():
    assert fence.resolve("dagster._core.storage.tags.PRIORITY_TAG") == "dagster/priority"
    with pytest.raises(LookupError, match="`dagster._core.storage` has no attribute `no_such_module`"):
        fence.resolve("dagster._core.storage.no_such_module.NAME")
    with pytest.raises(LookupError, match="`dagster` has no attribute `NoSuchClass`"):
        fence.resolve("dagster.NoSuchClass.method")
    with pytest.raises(LookupError, match="no module `no_such_package_here`"):
        fence.resolve("no_such_package_here.x")
    with pytest.raises(AttributeError, match="no registered Dagster private use"):
        fence.__getattr__("_execute_run_command_body")


def test_a_name_dagster_lacks_fails_to_import_naming_its_use(monkeypatch):
    """ImportError, as importing Dagster's module would have raised (the fork server skips such a preload)."""
    from dagster._core.storage import tags

    monkeypatch.delattr(tags, "PRIORITY_TAG")
    monkeypatch.delitem(vars(fence), "PRIORITY_TAG", raising=False)
    with pytest.raises(ImportError, match="PRIORITY_TAG .* 'run_queue_priority'; to run without it: In dagster.yaml"):
        from ml_platform.dagster_private import PRIORITY_TAG  # noqa: F401


def test_slot_polling_stays_off_when_dagster_moved_its_module(monkeypatch):
    slot_polling = _user("slot_polling")
    monkeypatch.setitem(fence.EXPORTS, "instance_concurrency_context", "dagster._core.execution.plan.moved_away")
    monkeypatch.delitem(vars(fence), "instance_concurrency_context", raising=False)
    with pytest.warns(UserWarning, match="this Dagster version differs"):
        assert slot_polling.apply() is False


# --- only the fence names Dagster's private modules ------------------------------------------------

PRIVATE_TEXT = re.compile(r"\bdagster(?:_[a-z_]+)?\._")


def private_mentions(source: str, filename: str = "<source>") -> list[str]:
    """Where `source` names a private module or name of Dagster (or of a dagster_* library): in
    any text (imports, strings such as module names to preload, comments), `from dagster import
    _name`, or `dg._name` on an imported dagster module."""
    found = [f"line {n}: {line.strip()}" for n, line in enumerate(source.splitlines(), 1) if PRIVATE_TEXT.search(line)]
    tree = ast.parse(source, filename=filename)
    aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases |= {a.asname or a.name for a in node.names if a.name.split(".")[0].startswith("dagster")}
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0].startswith("dagster"):
            found += [f"line {node.lineno}: from {node.module} import {a.name}" for a in node.names if a.name[0] == "_"]
    for node in ast.walk(tree):
        named = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
        if named and node.attr.startswith("_") and not node.attr.startswith("__"):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    return found


def _product_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def test_no_product_module_but_the_fence_names_dagster_private_code():
    offenders = {}
    for path in _product_files():
        if path == FENCE:
            continue
        text = path.read_text(errors="replace")
        found = private_mentions(text, str(path)) if path.suffix == ".py" else [m for m in PRIVATE_TEXT.findall(text)]
        if found:
            offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}, (
        "Dagster's private code is named outside ml_platform/dagster_private.py; register the use there "
        f"(what it relies on, what turns it off) and import it from there: {offenders}"
    )


def test_the_scan_finds_each_way_of_naming_private_code():
    source = textwrap.dedent(
        """
        import dagster as dg
        from dagster import _check
        from dagster._core.storage.tags import PRIORITY_TAG
        PRELOAD = ["dagster._cli.api"]
        limit = dg._core.storage
        fine = dg.__version__, dg.AssetKey, "dagster/priority"
        from dagster_shared._record import record
        """
    )
    assert private_mentions(source) == [
        "line 4: from dagster._core.storage.tags import PRIORITY_TAG",
        'line 5: PRELOAD = ["dagster._cli.api"]',
        "line 8: from dagster_shared._record import record",
        "line 3: from dagster import _check",
        "line 6: dg._core",
    ]


# --- the registry says where each use is ---------------------------------------------------------


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _fence_references(tree: ast.Module) -> set[str]:
    """Names a module takes from the fence: imported from it, read as `dagster_private.X`, or a
    use switched by name (`enabled("slot_polling")`)."""
    found, aliases = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "ml_platform.dagster_private":
            found |= {a.name for a in node.names}
        if isinstance(node, ast.ImportFrom) and node.module == "ml_platform":
            aliases |= {a.asname or a.name for a in node.names if a.name == "dagster_private"}
        if isinstance(node, ast.Import):
            aliases |= {a.asname or a.name for a in node.names if a.name == "ml_platform.dagster_private"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            found.add(node.attr)
        if isinstance(node, ast.Attribute) and ast.unparse(node.value) == "ml_platform.dagster_private":
            found.add(node.attr)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == "enabled"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.add(f"use:{node.args[0].value}")
    return found


# Names of the fence that are no Dagster name: which use each belongs to (None: the fence's machinery).
FENCE_OWN = {"PRELOADED_MODULES": "fork_server_preload", "enabled": None}


def test_the_registry_names_every_module_that_uses_private_code():
    owner = {name: use.name for use in fence.USES for name in use.exports}
    users: dict[str, set[str]] = {use.name: set() for use in fence.USES}
    unknown = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == FENCE:
            continue
        for name in _fence_references(ast.parse(path.read_text())):
            use = name.removeprefix("use:") if name.startswith("use:") else owner.get(name, FENCE_OWN.get(name, "?"))
            if use is None:
                continue
            if use not in users:
                unknown.append(f"{_module_name(path)}: {name}")
                continue
            users[use].add(_module_name(path))
    assert unknown == [], f"names taken from ml_platform.dagster_private that no registered use exports: {unknown}"
    registered = {use.name: set(use.used_by) for use in fence.USES}
    assert users == registered, "update `used_by` in ml_platform/dagster_private.py to where each use is"


def test_use_and_export_names_are_unique_and_public():
    names = [name for use in fence.USES for name in use.exports]
    assert len(names) == len(set(names))
    assert len(fence.BY_NAME) == len(fence.USES)
    # Private names (`_x`) of a module may not be imported by another (test_architecture.py).
    assert [n for n in names if n.startswith("_")] == []
    for use in fence.USES:
        assert use.relies_on and use.turned_off_by and use.used_by, use.name


# --- the off-switches -----------------------------------------------------------------------------


def _user(use: str):
    """The one platform module that has the use (by the registry, so a moved module is found)."""
    [module] = fence.BY_NAME[use].used_by
    return importlib.import_module(module)


def test_the_environment_switch_turns_off_only_switchable_uses(monkeypatch):
    monkeypatch.setenv(fence.OFF_ENV, " slot_polling ,")
    assert fence.enabled("slot_polling") is False
    assert fence.enabled("alembic_script_cache") is True
    monkeypatch.setenv(fence.OFF_ENV, "alembic_script_cache,forked_runs,typo")
    with pytest.warns(UserWarning, match=r"\['forked_runs', 'typo'\] ignored"):
        assert fence.enabled("alembic_script_cache") is False
    with pytest.raises(KeyError, match="forked_runs"):
        fence.enabled("forked_runs")
    monkeypatch.delenv(fence.OFF_ENV)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fence.enabled("slot_polling") is True


def test_switched_off_patches_leave_dagster_and_alembic_as_they_are(monkeypatch):
    from alembic.script import ScriptDirectory

    run_preload, slot_polling = _user("alembic_script_cache"), _user("slot_polling")
    module = fence.instance_concurrency_context
    before = (
        module._calculate_timeout_interval,
        module.InstanceConcurrencyContext.interval_to_next_pending_claim_check,
        ScriptDirectory.__dict__["from_config"],
    )
    monkeypatch.setenv(fence.OFF_ENV, "slot_polling,alembic_script_cache")
    assert slot_polling.apply() is False
    run_preload.cache_alembic_scripts()
    run_preload._warm_alembic()
    after = (
        module._calculate_timeout_interval,
        module.InstanceConcurrencyContext.interval_to_next_pending_claim_check,
        ScriptDirectory.__dict__["from_config"],
    )
    assert after == before


def _instance_yaml() -> dict:
    return yaml.safe_load((ROOT / "dagster.yaml").read_text())


def test_dagster_yaml_off_switches_give_dagster_own_coordinator_and_launcher():
    """What `run_queue_priority` and `run_launcher` name as their off-switch loads as Dagster's own."""
    settings = _instance_yaml()
    settings["run_coordinator"].update(module="dagster", **{"class": "QueuedRunCoordinator"})
    del settings["run_launcher"]
    with dg.instance_for_test(overrides=settings) as instance:
        assert type(instance.run_coordinator) is dg.QueuedRunCoordinator
        assert instance.run_coordinator.dequeue_interval_seconds == 1
        assert type(instance.run_launcher) is dg.DefaultRunLauncher
    settings = _instance_yaml()
    settings["run_launcher"]["config"]["fork_runs"] = False
    with dg.instance_for_test(overrides=settings) as instance:
        assert instance.run_launcher._fork_runs is False


def test_only_the_metrics_server_imports_the_metrics_module():
    """The off-switch of `failing_checks_metric`: nothing else imports it, so a break stops /metrics only."""
    importers = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "ml_platform.monitoring.metrics":
                importers.add(_module_name(path))
            if (
                isinstance(node, ast.ImportFrom)
                and node.module == "ml_platform.monitoring"
                and any(a.name == "metrics" for a in node.names)
            ):
                importers.add(_module_name(path))
            if isinstance(node, ast.Import) and any(a.name == "ml_platform.monitoring.metrics" for a in node.names):
                importers.add(_module_name(path))
    assert importers == {"ml_platform.__main__"}


def test_names_are_resolved_only_where_used(tmp_path):
    """Importing the fence imports no Dagster; loading the definitions resolves no private name; the
    launcher resolves its own names only, the fork path's when it forks (so `fork_runs: false` and
    the other off-switches really leave those names alone)."""
    daemon = [*fence.BY_NAME["run_launcher"].used_by, *fence.BY_NAME["run_queue_priority"].used_by]
    code = f"""
        import importlib, json, sys
        from ml_platform import dagster_private
        fence_alone = "dagster" in sys.modules
        from ml_platform.definitions import build_definitions
        build_definitions()
        by_definitions = sorted(n for n in dagster_private.EXPORTS if n in vars(dagster_private))
        for module in {daemon!r}:  # what the daemon imports from dagster.yaml: launcher and queue
            importlib.import_module(module)
        by_daemon = sorted(n for n in dagster_private.EXPORTS if n in vars(dagster_private))
        print(json.dumps(dict(fence_alone=fence_alone, by_definitions=by_definitions, by_daemon=by_daemon)))
        """
    env = {**os.environ, "ML_PLATFORM_DATA_DIR": str(tmp_path / "data"), "DAGSTER_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {
        "fence_alone": False,
        "by_definitions": [],
        "by_daemon": sorted(
            [
                *fence.BY_NAME["run_launcher"].exports,
                *fence.BY_NAME["run_queue_priority"].exports,
                "ASSET_PARTITION_RANGE_END_TAG",  # the queue reads a range run's newest day
            ]
        ),
    }


# --- the upgrade doc lists every use as the registry does ------------------------------------------


def test_the_upgrade_doc_lists_every_use_with_its_off_switch():
    text = DOC.read_text()
    start, end = text.find(fence.DOC_START), text.find(fence.DOC_END)
    assert start >= 0 and end > start, f"{DOC.name} has lost its generated list of private uses"
    listed = text[start : end + len(fence.DOC_END)]
    for use in fence.USES:
        assert f"### `{use.name}`" in listed and use.turned_off_by in listed, use.name
    assert listed == fence.markdown(), (
        f"{DOC.name}'s list of private uses differs from the registry: regenerate it with "
        "`.venv/bin/python -m ml_platform.dagster_private --write-doc docs/upgrading-dagster.md`"
    )
