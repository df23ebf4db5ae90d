"""Finds what the platform is made of: every module of `ml_platform.sources`, `.features`,
`.labels` and `.training_sets`.

A source module defines `SPEC` (a source spec); a feature module defines `TABLE` (a curated
table or feature view); a label module defines `LABEL`; a training-set module defines
`TRAINING_SET`. Adding one is adding a module; nothing else has to change. Modules whose names start
with `_` are private helpers and skipped.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from ml_platform import features, labels, sources, training_sets
from ml_platform.curated.label import Label
from ml_platform.curated.table import CuratedTable
from ml_platform.ingestion.spec import SourceSpec
from ml_platform.modeling.spec import TrainingSet


def _discover(package: ModuleType, attribute: str, kind: type, example: str) -> list:
    found = []
    for module_info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{module_info.name}")
        value = getattr(module, attribute, None)
        if not isinstance(value, kind):
            raise TypeError(f"{module.__name__} must define {attribute}, a {kind.__name__} (e.g. {example})")
        found.append(value)
    names = [v.name for v in found]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"two {package.__name__} modules share the name(s) {sorted(duplicates)}")
    return found


def discover_specs() -> list[SourceSpec]:
    """Every source spec, in module-name order."""
    return _discover(sources, "SPEC", SourceSpec, "FileSourceSpec(...)")


def discover_curated_tables() -> list[CuratedTable]:
    """Every curated table, in module-name order."""
    return _discover(features, "TABLE", CuratedTable, "CuratedTable(...)")


def discover_labels() -> list[Label]:
    """Every label, in module-name order."""
    return _discover(labels, "LABEL", Label, "Label(...)")


def discover_training_sets() -> list[TrainingSet]:
    """Every training set, in module-name order."""
    return _discover(training_sets, "TRAINING_SET", TrainingSet, "TrainingSet(...)")
