"""The code location's shape: every asset, check, sensor and policy, as a reviewed snapshot."""

from __future__ import annotations

import dagster as dg

from ml_platform.sources.registry import discover_specs


def test_definitions_load(defs):
    dg.Definitions.validate_loadable(defs)


def test_asset_specs_snapshot(defs):
    graph = defs.resolve_asset_graph()
    snapshot = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        snapshot[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "partitioned": node.partitions_def is not None,
            "single_run_backfill": node.backfill_policy == dg.BackfillPolicy.single_run(),
            "pool": node.pools,
            "checks": sorted(k.name for k in graph.get_check_keys_for_assets({key})),
            "automated": node.automation_condition is not None,
        }
    expected = {
        "clean_events": {"group": "clean", "deps": ["raw_events"], "partitioned": True, "single_run_backfill": True,
                         "pool": {"duckdb"}, "checks": ["contract"], "automated": True},
        "clean_users": {"group": "clean", "deps": ["raw_users"], "partitioned": False, "single_run_backfill": False,
                        "pool": {"duckdb"}, "checks": ["contract"], "automated": True},
        "raw_events": {"group": "raw", "deps": [], "partitioned": True, "single_run_backfill": True,
                       "pool": {"duckdb"}, "checks": [], "automated": False},
        "raw_users": {"group": "raw", "deps": [], "partitioned": False, "single_run_backfill": False,
                      "pool": {"duckdb"}, "checks": [], "automated": False},
        "user_daily_features": {"group": "features", "deps": ["clean_events", "clean_users"], "partitioned": True,
                                "single_run_backfill": True, "pool": {"duckdb"}, "checks": ["contract"],
                                "automated": True},
    }
    assert snapshot == expected


def test_checks_are_blocking_and_partitioned_like_their_asset(defs):
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        for check_key in graph.get_check_keys_for_assets({key}):
            spec = graph.get(check_key)
            assert spec.blocking is True, check_key
            assert spec.partitions_def == graph.get(key).partitions_def, check_key


def test_clean_assets_show_contract_column_schema(defs):
    graph = defs.resolve_asset_graph()
    schema = graph.get(dg.AssetKey("clean_events")).metadata["dagster/column_schema"]
    names = [c.name for c in schema.columns]
    assert names[:5] == ["source_file", "source_row", "landing_date", "ingested_at", "schema_version"]
    assert {"event_id", "event_time", "event_date", "amount", "device_type"} <= set(names)
    amount = next(c for c in schema.columns if c.name == "amount")
    assert (amount.type, amount.constraints.nullable) == ("DOUBLE", True)


def test_sensors_run_by_default(defs):
    sensors = {s.name: s for s in defs.sensors}
    assert set(sensors) == {"events_landing_sensor", "users_landing_sensor", "automation"}
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in sensors.values())


def test_every_spec_is_discovered_once():
    assert [s.name for s in discover_specs()] == ["events", "users"]
