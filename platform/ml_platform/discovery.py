"""Finds what the platform is made of: the modules a user writes under `ml_platform.declarations`.

A source module defines `SPEC` (a source spec); a feature module defines `TABLE` (a curated
table or feature view); a stream feature module defines `VIEW`; a label module defines `LABEL`; a training-set module defines
`TRAINING_SET`. Adding one is adding a module; nothing else has to change. Modules whose names
start with `_` are private helpers and skipped.

The declarations are found by name, as plugins are: they import the machinery (spec classes,
contracts), so the machinery never imports them, and whoever asks (the code location, or
`get_training_set` resolving `view:feature` names) says which class a folder's modules must give.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TypeVar

DECLARATIONS = "ml_platform.declarations"
# Each folder of declarations and the attribute its modules define.
ATTRIBUTES = {
    "sources": "SPEC",
    "features": "TABLE",
    "stream_features": "VIEW",
    "labels": "LABEL",
    "training_sets": "TRAINING_SET",
}

Declared = TypeVar("Declared")


def discover(folder: str, kind: type[Declared]) -> list[Declared]:
    """Every declaration of `ml_platform.declarations.<folder>`, in module-name order; each module
    must define the folder's attribute as a `kind`, and no two may share a name."""
    attribute = ATTRIBUTES[folder]
    package = importlib.import_module(f"{DECLARATIONS}.{folder}")
    found = []
    for module_info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{module_info.name}")
        value = getattr(module, attribute, None)
        if not isinstance(value, kind):
            raise TypeError(f"{module.__name__} must define {attribute}, a {kind.__name__} (e.g. {kind.__name__}(...))")
        found.append(value)
    names = [v.name for v in found]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"two {package.__name__} modules share the name(s) {sorted(duplicates)}")
    return found
