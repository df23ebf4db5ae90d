"""The platform's sources: one module per source, holding its contract (a Pandera model) and `SPEC`.

Discovered automatically (`ml_platform.discovery`); adding a source is adding a module
here. See README "Add your own source".
"""
