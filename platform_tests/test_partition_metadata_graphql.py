"""What the UI shows after a single-run range backfill, read through Dagster's GraphQL API.

Three landing days with 2, 3 and 5 events are backfilled as one range run of `raw_events` and
then one of `clean_events`. The UI's asset page reads each partition's materialization and check
results over GraphQL; here the same queries run in process against the test's instance, with the
code location `ml_platform.definitions` loaded in process too (no `dagster dev`, no subprocess).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster._core.test_utils import in_process_test_workspace
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster_graphql.test.utils import execute_dagster_graphql

from conftest import write_landing

PLATFORM_ROOT = Path(__file__).resolve().parents[1] / "platform"
DAYS = ["2026-11-02", "2026-11-03", "2026-11-04"]
EVENTS_PER_DAY = dict(zip(DAYS, [2, 3, 5], strict=True))
HEADER = "event_id,user_id,event_type,event_time,product_id,amount\n"

MATERIALIZATIONS = """
query ($key: AssetKeyInput!, $partitions: [String!]) { assetNodeOrError(assetKey: $key) {
  __typename ... on AssetNode { assetMaterializations(partitions: $partitions) {
    partition runId metadataEntries { label
      ... on IntMetadataEntry { intValue } ... on TextMetadataEntry { text } } } } } }
"""
CHECK_EXECUTIONS = """
query ($key: AssetKeyInput!, $check: String!, $partition: String) {
  assetCheckExecutions(assetKey: $key, checkName: $check, partition: $partition, limit: 20) {
    runId status partition evaluation { success } } }
"""


def _land_events(data_dir: Path) -> None:
    """Valid v1 rows only, each timed on its landing day: landing day = event day = partition."""
    seq = 0
    for day, count in EVENTS_PER_DAY.items():
        rows = []
        for i in range(count):
            seq += 1
            rows.append(f"e{seq},u{i % 2 + 1},page_view,{day}T1{i}:00:00Z,,\n")
        write_landing(data_dir, "events", day, "a.csv", HEADER + "".join(rows))


@pytest.fixture
def graphql(instance, data_dir):
    """Run a GraphQL query as the UI would, against the test's instance and code location."""
    origin = LoadableTargetOrigin(
        module_name="ml_platform.definitions", attribute="defs", working_directory=str(PLATFORM_ROOT)
    )
    with in_process_test_workspace(instance, origin) as context:
        [entry] = context.get_code_location_entries().values()
        assert entry.code_location is not None, entry.load_error

        def execute(query: str, variables: dict) -> dict:
            return execute_dagster_graphql(context, query, variables).data

        yield execute


def _materializations_by_partition(graphql, asset: str) -> dict[str, dict]:
    node = graphql(MATERIALIZATIONS, {"key": {"path": [asset]}, "partitions": DAYS})["assetNodeOrError"]
    assert node["__typename"] == "AssetNode", node
    found: dict[str, dict] = {}
    for event in node["assetMaterializations"]:
        assert event["partition"] not in found, f"{asset} {event['partition']} materialized more than once"
        entries = {e["label"]: e.get("intValue", e.get("text")) for e in event["metadataEntries"]}
        found[event["partition"]] = {"run_id": event["runId"], **entries}
    assert sorted(found) == DAYS, found
    return found


def _assert_one_run_three_partition_row_counts(graphql, asset: str, run_id: str) -> None:
    found = _materializations_by_partition(graphql, asset)
    assert {day: m.get("dagster/partition_row_count") for day, m in found.items()} == EVENTS_PER_DAY, asset
    assert {m["run_id"] for m in found.values()} == {run_id}, asset  # one run wrote all three
    assert {m["dagster/row_count"] for m in found.values()} == {10}, asset  # the table's total
    assert {m["dagster/table_name"] for m in found.values()} == {asset}


def test_range_backfill_of_three_days_shows_three_partition_row_counts_in_the_ui(runner, data_dir, graphql):
    _land_events(data_dir)
    raw = runner.run("raw_events", range_=(DAYS[0], DAYS[-1]))
    clean = runner.run("clean_events", range_=(DAYS[0], DAYS[-1]))

    _assert_one_run_three_partition_row_counts(graphql, "raw_events", raw.run_id)
    _assert_one_run_three_partition_row_counts(graphql, "clean_events", clean.run_id)

    # Each partition's own contract check result, as the asset's Checks tab lists it per partition.
    for day in DAYS:
        executions = graphql(
            CHECK_EXECUTIONS, {"key": {"path": ["clean_events"]}, "check": "contract", "partition": day}
        )["assetCheckExecutions"]
        assert [(e["runId"], e["partition"], e["status"], e["evaluation"]["success"]) for e in executions] == [
            (clean.run_id, day, "SUCCEEDED", True)
        ], day

    # The raw schema check has a verdict per landing day too (not "skipped"): the files carry schema
    # v1, an accepted change from the current v3, so each day's check failed with WARN severity.
    for day in DAYS:
        executions = graphql(CHECK_EXECUTIONS, {"key": {"path": ["raw_events"]}, "check": "schema", "partition": day})[
            "assetCheckExecutions"
        ]
        assert [(e["runId"], e["partition"], e["status"], e["evaluation"]["success"]) for e in executions] == [
            (raw.run_id, day, "FAILED", False)
        ], day
