"""The module graph keeps the layout honest: each room imports only what sits below it.

Read from the source with `ast` (nothing is imported), so a reach-back fails here with the
module and the import that broke the rule, before it becomes a habit. Also: loading the
definitions prints no Dagster preview/beta warning the platform has not acknowledged.
"""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import dagster as dg
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "platform" / "ml_platform"

# Sources, layers and what Dagster records of them: machinery below them never imports these.
_LAYERS = {"ingestion", "source_kinds", "clean", "curated", "checks", "results", "sources", "features", "discovery"}

# Room -> rooms it must never import. A room is a sub-package or top-level module of ml_platform.
FORBIDDEN = {
    # The SQL helpers and the warehouse know nothing about sources, layers or Dagster assets.
    "warehouse": _LAYERS,
    # What runs record in Dagster, the same for every layer: no layer's logic.
    "results": {"ingestion", "source_kinds", "clean", "curated", "checks", "sources", "features", "discovery"},
    "contracts": {"ingestion", "source_kinds", "clean", "curated", "checks", "sources", "features", "discovery"},
    # What every source shares never depends on a kind (only source_assets, the assembler, sees them all).
    "ingestion": {"source_kinds", "clean", "curated", "sources", "features", "discovery", "source_assets"},
    # The clean layer is the same for every kind: no kind's internals.
    "clean": {"source_kinds", "curated", "sources", "features", "discovery"},
    "checks": {"source_kinds", "clean", "curated", "sources", "features", "discovery"},
    "curated": {"ingestion", "source_kinds", "clean", "sources", "features", "discovery"},
    # Monitoring reads the Dagster instance only: a process holding the warehouse's write lock blocks
    # even read-only connections, so a monitor that opened it would stall while the platform works.
    "monitoring": {"warehouse", "ingestion", "source_kinds", "clean", "curated", "checks", "training", "modeling"},
    # Quality judges tables and figures it is handed; sources and layers call it, never the reverse.
    "quality": {"ingestion", "source_kinds", "clean", "curated", "checks", "sources", "features", "discovery"},
    "source_kinds": {"clean", "curated", "sources", "features", "discovery"},
    # Where files live (local or S3) and how to reach them: no source, layer or check logic.
    "storage": {*_LAYERS, "quality", "monitoring"},
    # Reading training data works on warehouse tables, not on how they were built.
    "training": {"ingestion", "source_kinds", "clean", "checks", "results", "sources", "modeling"},
    # Training sets, models and serving build on curated tables and the training API, never on
    # ingestion or the instances (the assembler hands them over).
    "modeling": {"ingestion", "source_kinds", "clean", "checks", "sources", "features", "labels", "training_sets"},
    # Instances declare; they use the public spec classes and contract columns only.
    "sources": {"clean", "curated", "checks", "warehouse", "discovery", "ingestion"},
    "features": {"ingestion", "source_kinds", "clean", "checks", "warehouse", "sources", "discovery"},
    "labels": {"ingestion", "source_kinds", "clean", "checks", "warehouse", "sources", "discovery"},
    "training_sets": {"ingestion", "source_kinds", "clean", "checks", "warehouse", "sources", "discovery", "curated"},
}


# Rooms of instances: one module per source, feature view, label or training set.
INSTANCES = {"sources", "features", "labels", "training_sets"}


def _modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(), filename=str(path))
    return found


def _imports(tree: ast.Module) -> list[tuple[str, list[str]]]:
    """(module imported from, names) for every ml_platform import, including function-level ones."""
    result = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "ml_platform":
            result += [(f"ml_platform.{a.name}", []) for a in node.names]  # `from ml_platform import settings`
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ml_platform"):
            result.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            result += [(a.name, []) for a in node.names if a.name.startswith("ml_platform")]
    return result


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


MODULES = _modules()


def test_the_package_is_read():
    assert {"ml_platform.clean.write", "ml_platform.warehouse.writer", "ml_platform.source_kinds.files.reader"} <= set(
        MODULES
    )


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_reach_backs(module):
    room = _room(module)
    broken = []
    for imported, names in _imports(MODULES[module]):
        target = _room(imported)
        forbidden = FORBIDDEN.get(room, set())
        if target in forbidden:
            broken.append(f"{imported} ({room} must not import {target})")
        if room == "source_kinds" and target == "source_kinds" and imported.split(".")[2] != module.split(".")[2]:
            broken.append(f"{imported} (a source kind must not import another kind)")
        for name in names:
            # A private name (`_x`) belongs to its module; dunder names (__version__) are public.
            if name.startswith("_") and not name.startswith("__"):
                broken.append(f"{imported}.{name} (private to its module)")
    assert broken == [], f"{module} imports: {broken}"


def test_nothing_but_discovery_imports_the_instances():
    importers = {
        module
        for module, tree in MODULES.items()
        for imported, _ in _imports(tree)
        if _room(imported) in INSTANCES and _room(module) not in INSTANCES
    }
    assert importers == {"ml_platform.discovery"}


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
