"""Schema evolution: files of schema v1, v2 and v3, alone and mixed, under each policy.

v1 has no device column and no session_id; v2 adds device_type and session_id; v3 renames
device_type to device (the current version). The events spec declares the alias.
"""

from __future__ import annotations

import dataclasses

import dagster as dg
import pytest

from conftest import Runner, source_runner, write_landing
from helpers import run_check, run_metadata
from ml_platform.declarations.sources.events import SPEC as EVENTS

DAY = "2026-11-02"
FILES = {
    "v1": "event_id,user_id,event_type,event_time,product_id,amount\n"
    "a1,u1,page_view,2026-11-02T10:00:00Z,,\na2,u1,search,2026-11-02T10:01:00Z,,\n",
    "v2": "event_id,user_id,event_type,event_time,product_id,amount,device_type,session_id\n"
    "b1,u1,page_view,2026-11-02T11:00:00Z,,,mobile,s1\n",
    "v3": "event_id,user_id,event_type,event_time,product_id,amount,device,session_id\n"
    "c1,u2,page_view,2026-11-02T12:00:00Z,,,tablet,s2\nc2,u2,search,2026-11-02T12:01:00Z,,,desktop,s2\n",
    "v3+extra": "event_id,user_id,event_type,event_time,product_id,amount,device,session_id,referrer\n"
    "d1,u3,page_view,2026-11-02T13:00:00Z,,,mobile,s3,ad\n",
}
ROWS = {"v1": ["a1", "a2"], "v2": ["b1"], "v3": ["c1", "c2"], "v3+extra": ["d1"]}
# policy -> versions whose rows the clean layer accepts
ACCEPTED = {
    "flexible": {"v1", "v2", "v3", "v3+extra"},
    "add_only": {"v2", "v3", "v3+extra"},  # v1 lacks device/session_id; v2's device_type is the alias
    "strict": {"v3"},
}
REJECT_RULE = {
    "add_only": "_schema:add_only(columns removed)",
    "strict": "_schema:strict(columns differ from the current version)",
}


def _runner(policy: str, instance, data_dir) -> Runner:
    spec = dataclasses.replace(EVENTS, schema_policy=policy, max_quarantine_fraction=1.0)
    return source_runner(spec, instance, data_dir)


def _land(data_dir, versions):
    for i, version in enumerate(versions):
        write_landing(data_dir, "events", DAY, f"f{i}_{version.replace('+', '_')}.csv", FILES[version])


CASES = [
    (policy, versions)
    for policy in ACCEPTED
    for versions in (["v1"], ["v2"], ["v3"], ["v3+extra"], ["v1", "v2", "v3", "v3+extra"])
]


@pytest.mark.parametrize("policy,versions", CASES, ids=[f"{p}-{'+'.join(v)}" for p, v in CASES])
def test_policy_outcome(policy, versions, instance, data_dir):
    runner = _runner(policy, instance, data_dir)
    _land(data_dir, versions)
    raw = runner.run("raw_events", partition=DAY)
    clean = runner.run("clean_events", partition=DAY)

    accepted = sorted(e for v in versions if v in ACCEPTED[policy] for e in ROWS[v])
    rejected = sorted(e for v in versions if v not in ACCEPTED[policy] for e in ROWS[v])
    assert [r[0] for r in runner.query("SELECT event_id FROM clean_events ORDER BY 1")] == accepted
    quarantined = runner.query("SELECT record->>'event_id', rule FROM quarantine_events ORDER BY 1")
    assert quarantined == [(e, REJECT_RULE[policy]) for e in rejected]
    # Nothing is silently dropped.
    assert len(accepted) + len(rejected) == sum(len(ROWS[v]) for v in versions)

    # The raw schema check raises every change: WARN when accepted, ERROR when rejected.
    schema = run_check(raw, "raw_events", "schema")
    changed = [v for v in versions if v != "v3"]
    assert schema.passed is (not changed)
    assert schema.metadata["changed_batches"].value == len(changed)
    assert schema.metadata["rejected_batches"].value == len(
        rejected and [v for v in versions if v not in ACCEPTED[policy]]
    )
    if changed:
        expected = dg.AssetCheckSeverity.ERROR if rejected else dg.AssetCheckSeverity.WARN
        assert schema.severity == expected

    meta = run_metadata(clean)
    extra = "referrer" if "v3+extra" in versions else "none"
    assert meta["extra_columns"] == extra


def test_renamed_column_lands_in_contract_column(instance, data_dir):
    runner = _runner("flexible", instance, data_dir)
    _land(data_dir, ["v1", "v2", "v3"])
    runner.run("raw_events", partition=DAY)
    runner.run("clean_events", partition=DAY)
    assert runner.query("SELECT event_id, device_type, session_id, schema_version FROM clean_events ORDER BY 1") == [
        ("a1", None, None, "v1"),
        ("a2", None, None, "v1"),
        ("b1", "mobile", "s1", "v2"),
        ("c1", "tablet", "s2", "v3"),
        ("c2", "desktop", "s2", "v3"),
    ]
