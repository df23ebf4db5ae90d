"""The run queue (ml_platform.runs.queue): runs of newer days are taken first.

The priority a run's tags give it, and the repository's instance configured with the coordinator.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml
from dagster._core.test_utils import instance_for_test

from ml_platform.runs.queue import NewestFirstRunCoordinator, newest_first_priority

REPO = Path(__file__).resolve().parents[1]
TODAY = dt.date(2026, 11, 26)


def test_priority_is_days_from_today_for_a_dated_partition():
    assert newest_first_priority({"dagster/partition": "2026-11-26"}, TODAY) == 0
    assert newest_first_priority({"dagster/partition": "2026-11-23"}, TODAY) == -3
    assert newest_first_priority({"dagster/partition": "2026-11-27"}, TODAY) == 1
    assert newest_first_priority({"dagster/partition": "2027-03-01"}, TODAY) == 1  # never above tomorrow's
    assert newest_first_priority({"dagster/partition": "1990-01-01"}, TODAY) == -13478
    # A range backfill counts by its last day; hourly partition keys by their day.
    range_tags = {
        "dagster/asset_partition_range_start": "2026-10-01",
        "dagster/asset_partition_range_end": "2026-11-20",
    }
    assert newest_first_priority(range_tags, TODAY) == -6
    assert newest_first_priority({"dagster/partition": "2026-11-25-13:00"}, TODAY) == -1


def test_a_stream_micro_batch_goes_before_every_day():
    from ml_platform.ingestion.kafka.sensor import SOURCE_TAG

    micro_batch = {SOURCE_TAG: "stream_events", "dagster/partition": "2026-11-26"}
    assert newest_first_priority(micro_batch, TODAY) == 2
    assert newest_first_priority({"dagster/partition": "2026-11-27"}, TODAY) == 1  # the highest a day gets
    assert newest_first_priority(micro_batch | {"dagster/priority": "-5"}, TODAY) is None  # a user's choice stays


def test_runs_left_alone():
    assert newest_first_priority({}, TODAY) is None  # no partition: a training set, a snapshot
    assert newest_first_priority({"dagster/partition": "eu-west"}, TODAY) is None  # not a day
    assert newest_first_priority({"dagster/partition": "2026-11-26", "dagster/priority": "7"}, TODAY) is None


def test_the_repository_instance_queues_with_it():
    """What `make dev` and the end-to-end tests run; there the tags are asserted on real runs
    (test_e2e_dagster_dev.py)."""
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())["run_coordinator"]
    assert (config["module"], config["class"]) == ("ml_platform.runs.queue", "NewestFirstRunCoordinator")
    with instance_for_test(overrides={"run_coordinator": config}) as instance:
        assert isinstance(instance.run_coordinator, NewestFirstRunCoordinator)
        assert instance.run_coordinator.dequeue_interval_seconds == 1
