"""Finds every source spec: each module in `ml_platform.source_specs` that defines `SPEC`.

Adding a source is adding one module there; nothing else has to change.
"""

from __future__ import annotations

import importlib
import pkgutil

from ml_platform import source_specs
from ml_platform.sources.spec import SourceSpec


def discover_specs() -> list[SourceSpec]:
    specs = []
    for module_info in sorted(pkgutil.iter_modules(source_specs.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{source_specs.__name__}.{module_info.name}")
        spec = getattr(module, "SPEC", None)
        if not isinstance(spec, SourceSpec):
            raise TypeError(f"{module.__name__} must define SPEC, a SourceSpec (e.g. FileSourceSpec(...))")
        specs.append(spec)
    names = [s.name for s in specs]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"two source specs share the name(s) {sorted(duplicates)}")
    return specs
