"""The module graph keeps the layout honest: imports run one way, and no package has a cycle.

Read from the source with `ast` (nothing is imported; imports inside functions count too), so a
reach-back fails here with the module and the import that broke the rule, before it becomes a
habit. The allowed direction is written once, in `LAYERS`. Also: loading the definitions prints
no Dagster preview/beta warning the platform has not acknowledged.
"""

from __future__ import annotations

import ast
import warnings
from collections import defaultdict
from pathlib import Path

import dagster as dg
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "platform" / "ml_platform"

# Every room (sub-package or module of ml_platform), bottom first, in the order data flows. A room
# imports only rooms of lower layers: never its own layer, never upwards. So the graph of rooms
# has no cycle, and a newcomer reads the layout in this order.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("settings", "dagster_private", "dagster_previews", "discovery"),  # environment; Dagster's edges
    (
        "results",
        "automation",
        "storage",
        "online_store",
    ),  # what runs record; when assets run; where files and online values live
    ("warehouse",),  # DuckDB: resource, SQL text, extensions, S3 access
    ("partitions", "lakehouse"),  # the daily partitions and a run's window; Iceberg tables and their catalog
    ("contracts",),  # what a table promises, and the one writer that keeps it
    ("privacy",),  # pseudonyms of personal columns
    ("raw",),  # the raw table, ledger and quarantine every way of ingesting writes
    ("checks",),  # every check kind
    ("ingestion",),  # one package per way of ingesting
    ("clean",),  # the clean layer, the same for every source
    ("point_in_time",),  # the point-in-time engine
    ("curated",),  # curated tables, feature views and labels, with the step that builds them
    ("training",),  # get_training_set, online lookups, training-set and model assets
    ("declarations",),  # what a user declares: sources, features, labels, training sets
    ("monitoring",),  # reports, alerts, metrics, read from the Dagster instance
    ("definitions",),  # the code location
    ("runs", "demo"),  # local run plumbing (above the definitions it preloads); demo data
    ("__main__",),  # the command line
)
LAYER_OF = {room: i for i, layer in enumerate(LAYERS) for room in layer}

# What the layer order alone would allow but a room's purpose forbids.
FORBIDDEN = {
    # Monitoring reads the Dagster instance only: a process holding the warehouse's write lock blocks
    # even read-only connections, so a monitor that opened it would stall while the platform works.
    "monitoring": {"warehouse", "raw", "ingestion", "clean", "curated", "contracts", "point_in_time", "training"},
    # Declarations use the public spec classes, contracts and rules only: never the machinery.
    "declarations": {"warehouse", "partitions", "privacy", "results", "automation", "storage", "checks", "clean"},
}

# The folders of declarations: found by name (`ml_platform.discovery`), imported by nothing.
DECLARED = ("sources", "features", "labels", "training_sets")


def _modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(), filename=str(path))
    return found


MODULES = _modules()
PACKAGES = {name for name in MODULES if (PACKAGE.parent / name.replace(".", "/") / "__init__.py").exists()}


def _imports(tree: ast.Module) -> list[tuple[str, list[str]]]:
    """(module imported, names) for every ml_platform import, including function-level ones;
    `from package import module` is an import of that module."""
    result = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "ml_platform":
            submodules = [a.name for a in node.names if f"{node.module}.{a.name}" in MODULES]
            result += [(f"{node.module}.{name}", []) for name in submodules]
            names = [a.name for a in node.names if a.name not in submodules]
            if names or not submodules:
                result.append((node.module, names))
        elif isinstance(node, ast.Import):
            result += [(a.name, []) for a in node.names if a.name.split(".")[0] == "ml_platform"]
    return result


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _child(package: str, module: str) -> str | None:
    """The child of `package` holding `module` (`__init__` for the package itself), None outside it."""
    if module == package:
        return "__init__"
    prefix = package + "."
    return module[len(prefix) :].split(".")[0] if module.startswith(prefix) else None


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph, as its nodes in order, or None."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_package_is_read():
    assert {"ml_platform.clean.write", "ml_platform.contracts.writer", "ml_platform.ingestion.files.reader"} <= set(
        MODULES
    )


def test_every_room_has_a_layer():
    rooms = {_room(m) for m in MODULES} - {""}
    assert sorted(rooms - set(LAYER_OF)) == [], "add the new room to LAYERS (and docs/architecture.md)"
    assert sorted(set(LAYER_OF) - rooms) == [], "LAYERS names a room that does not exist"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_downwards(module):
    room = _room(module)
    broken = []
    for imported, names in _imports(MODULES[module]):
        target = _room(imported)
        if room and target and target != room:
            if LAYER_OF[target] >= LAYER_OF[room]:
                broken.append(f"{imported} ({room} is not above {target} in LAYERS)")
            if target in FORBIDDEN.get(room, set()):
                broken.append(f"{imported} ({room} must not import {target})")
        if room == target == "ingestion" and len(module.split(".")) > 2 and len(imported.split(".")) > 2:
            mine, theirs = module.split(".")[2], imported.split(".")[2]
            if mine != theirs and f"ml_platform.ingestion.{theirs}" in PACKAGES:
                broken.append(f"{imported} (a way of ingesting must not import another)")
        for name in names:
            # A private name (`_x`) belongs to its module; dunder names (__version__) are public.
            if name.startswith("_") and not name.startswith("__"):
                broken.append(f"{imported}.{name} (private to its module)")
    assert broken == [], f"{module} imports: {broken}"


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_package_has_a_cycle(package):
    """Within every package, at every depth, its children (sub-packages, modules and its own
    `__init__`) import each other without a cycle."""
    edges: dict[str, set[str]] = defaultdict(set)
    why: dict[tuple[str, str], str] = {}
    for module, tree in MODULES.items():
        source = _child(package, module)
        if source is None:
            continue
        for imported, _ in _imports(tree):
            target = _child(package, imported)
            if target is not None and target != source:
                edges[source].add(target)
                why.setdefault((source, target), f"{module} imports {imported}")
    cycle = _cycle(edges)
    if cycle:
        steps = "; ".join(why[edge] for edge in zip(cycle, cycle[1:], strict=False))
        pytest.fail(f"{package}: {' -> '.join(cycle)} ({steps})")


def test_the_cycle_finder_finds_cycles():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_nothing_imports_the_declarations():
    """Declarations are found by name (`ml_platform.discovery`): no module imports one, so the
    machinery they build on never depends on them."""
    importers = {
        (module, imported)
        for module, tree in MODULES.items()
        for imported, _ in _imports(tree)
        if any(imported.startswith(f"ml_platform.declarations.{folder}") for folder in DECLARED)
    }
    assert importers == set()


def test_loading_the_definitions_prints_no_unacknowledged_dagster_warning(data_dir):
    from ml_platform.definitions import build_definitions

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build_definitions()
    dagster_warnings = [str(w.message) for w in caught if issubclass(w.category, (dg.PreviewWarning, dg.BetaWarning))]
    assert dagster_warnings == []


def test_acknowledging_an_unknown_feature_is_refused():
    from ml_platform.dagster_previews import acknowledged

    with pytest.raises(KeyError, match="not a Dagster preview feature"), acknowledged("something_new"):
        pass
