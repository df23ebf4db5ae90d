"""Imported by the fork server alone, as the last of its preloads (`run_forks.PRELOAD`): loads the
platform and parses Dagster's migrations there once (`run_preload.preload`), for every run forked
from it."""

from ml_platform import run_preload

run_preload.preload()
