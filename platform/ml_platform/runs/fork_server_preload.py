"""Imported by the fork server alone, as the last of its preloads (`forks.PRELOAD`): loads the
platform and parses Dagster's migrations there once (`preload.preload`), for every run forked
from it."""

from ml_platform.runs import preload as run_preload

run_preload.preload()
