"""The code location's shape: every asset, check, sensor and policy, as a reviewed snapshot."""

from __future__ import annotations

import dagster as dg

from ml_platform.declarations import discover_specs


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

    def raw(source):
        return {
            "group": "raw",
            "deps": [],
            "partitioned": True,
            "single_run_backfill": True,
            "pool": {"duckdb"},
            # File sources also check that every landed file was read in full; every source's
            # landing_freshness says whether it still lands.
            "checks": ["landing_freshness", "schema"]
            if source in {"transactions", "weather"}
            # A stream source checks that every offset was read and every message usable.
            else ["landing_freshness", "messages", "schema"]
            if source == "stream_events"
            else ["files", "landing_freshness", "schema"],
            # Its trigger requests it; automation only retries an attempt that died. A stream's lag
            # sensor retries its own runs (ingestion/kafka/assets.py).
            "automated": source != "stream_events",
        }

    def clean(source, partitioned=True):
        return {
            "group": "clean",
            "deps": [f"raw_{source}"],
            "partitioned": partitioned,
            "single_run_backfill": partitioned,
            "pool": {"duckdb"},
            # Partitioned clean tables are also judged against their own history; keys are unique in
            # all; events and transactions point at users and products.
            "checks": sorted(
                (
                    ["completeness", "contract", "late_arrivals", "uniqueness", "volume"]
                    if partitioned
                    else ["contract", "uniqueness"]
                )
                + (["references"] if source in {"events", "stream_events", "transactions"} else [])
            ),
            "automated": True,
        }

    sources = ["events", "maintenance", "products", "stream_events", "telemetry", "transactions", "users", "weather"]
    snapshots = {"products", "users"}
    expected = {f"raw_{s}": raw(s) for s in sources}
    expected.update({f"clean_{s}": clean(s, partitioned=s not in snapshots) for s in sources})
    expected["user_daily_features"] = {
        "group": "features",
        "deps": ["clean_events", "clean_users"],
        "partitioned": True,
        "single_run_backfill": True,
        "pool": {"duckdb"},
        # Features are watched for drift; labels (below) are not. Every curated table proves it
        # holds no raw personal value (privacy).
        "checks": ["audit", "contract", "drift", "privacy"],
        "automated": True,
    }
    # A feature view reads every day before its partition, and the users history as of then.
    expected["user_activity"] = dict(expected["user_daily_features"])

    def curated(*deps, group="features"):
        return {**expected["user_daily_features"], "group": group, "deps": sorted(deps)}

    expected["device_health"] = curated("clean_telemetry")
    expected["weather"] = curated("clean_weather")
    expected["product_features"] = curated("clean_products")
    expected["user_transactions"] = curated("clean_transactions")
    # A label also reads its clock: the outcome source's raw table, whose landing days say it is final.
    expected["churn_label"] = curated("clean_events", "raw_events", group="labels")
    expected["device_failure_label"] = curated("clean_telemetry", "clean_maintenance", "raw_telemetry", group="labels")
    for label in ("churn_label", "device_failure_label"):
        expected[label]["checks"] = ["audit", "contract", "privacy"]

    def unpartitioned(*deps, group="training", pool=("duckdb",)):
        return {
            "group": group,
            "deps": sorted(deps),
            "partitioned": False,
            "single_run_backfill": False,
            "pool": set(pool),
            "checks": [],
            "automated": True,
        }

    views = ["device_health", "product_features", "user_activity", "user_transactions", "weather"]
    expected["latest_features"] = unpartitioned(*views, group="serving")
    expected["churn_training_set"] = unpartitioned("churn_label", "user_activity", "user_transactions")
    expected["device_failure_training_set"] = unpartitioned("device_failure_label", "device_health", "weather")
    for name in ("churn", "device_failure"):
        for model in (f"{name}_model", f"{name}_leaky_model"):
            expected[model] = unpartitioned(f"{name}_training_set", pool=())
    # Stream feature views: brought up to date in the raw run (no automation), guarded like any
    # curated table, no drift (a view of minutes has no days to compare), no audit (a partition's
    # rows depend on the micro-batches that made them: curated/audit.py).
    for view in ("user_activity_5m", "user_activity_1h"):
        expected[view] = {
            **curated("raw_stream_events", group="realtime"),
            "checks": ["contract", "privacy"],
            "automated": False,
        }
    # Old snapshots and unreachable files of the lake tables, on its own schedule; no warehouse pool.
    expected["lake_housekeeping"] = {**unpartitioned(group="lake", pool=()), "automated": False}
    assert snapshot == expected


def test_checks_are_partitioned_like_their_asset_and_contracts_block(defs):
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        for check_key in graph.get_check_keys_for_assets({key}):
            spec = graph.get(check_key)
            # Contracts guard what comes after, and so does privacy (a raw id must not spread);
            # a raw schema change is raised, never blocking, because raw keeps every row whatever its columns.
            assert spec.blocking is (check_key.name in ("contract", "privacy")), check_key
            # How long ago a source last landed is about the source, not about one day; the audit
            # judges the latest days at once.
            partitions_def = None if check_key.name in ("landing_freshness", "audit") else graph.get(key).partitions_def
            assert spec.partitions_def == partitions_def, check_key


def test_clean_assets_show_contract_column_schema(defs):
    graph = defs.resolve_asset_graph()
    schema = graph.get(dg.AssetKey("clean_events")).metadata["dagster/column_schema"]
    names = [c.name for c in schema.columns]
    assert names[:5] == ["source_file", "source_row", "landing_date", "ingested_at", "schema_version"]
    assert {"event_id", "event_time", "event_date", "amount", "device_type"} <= set(names)
    amount = next(c for c in schema.columns if c.name == "amount")
    assert (amount.type, amount.constraints.nullable) == ("DOUBLE", True)
    # Each column's contract rules show in the Columns tab as its constraints.
    by_name = {c.name: c.constraints for c in schema.columns}
    assert by_name["amount"].other == [">= 0.0", "<= 10000.0"]
    assert by_name["event_type"].other == [
        "in ['page_view', 'product_view', 'search', 'add_to_cart', 'remove_from_cart', 'purchase']"
    ]
    assert (by_name["event_id"].nullable, by_name["event_id"].unique, by_name["event_id"].other) == (False, True, [])
    products = graph.get(dg.AssetKey("clean_products")).metadata["dagster/column_schema"]
    assert next(c for c in products.columns if c.name == "product_id").constraints.other == ["matches P\\d{4}$"]
    assert graph.get(dg.AssetKey("clean_events")).metadata["dagster/table_name"] == "clean_events"


def test_sensors_run_by_default(defs):
    sensors = {s.name: s for s in defs.sensors}
    assert set(sensors) == {
        "alerts",
        "automation",
        "events_landing_sensor",
        "maintenance_landing_sensor",
        "products_landing_sensor",
        "quality_reports",
        "stream_events_lag_sensor",
        "telemetry_landing_sensor",
        "transactions_change_sensor",
        "users_landing_sensor",
        "landing_freshness_sensor",
        "weather_catch_up_sensor",
    }
    # Without an API endpoint configured, a running schedule or catch-up would only produce failed runs.
    assert {name for name, s in sensors.items() if s.default_status != dg.DefaultSensorStatus.RUNNING} == {
        "weather_catch_up_sensor"
    }
    assert sensors["weather_catch_up_sensor"].default_status == dg.DefaultSensorStatus.STOPPED
    # The consistency audit and the lake's housekeeping run daily by themselves (the audit's checks
    # never block).
    assert [(s.name, s.default_status) for s in defs.schedules] == [
        ("consistency_audit_schedule", dg.DefaultScheduleStatus.RUNNING),
        ("lake_housekeeping_schedule", dg.DefaultScheduleStatus.RUNNING),
        ("weather_daily_schedule", dg.DefaultScheduleStatus.STOPPED),
    ]


def test_every_spec_is_discovered_once():
    assert [s.name for s in discover_specs()] == [
        "events",
        "maintenance",
        "products",
        "stream_events",
        "telemetry",
        "transactions",
        "users",
        "weather",
    ]


def test_feature_view_reads_every_day_before_its_partition(defs):
    """Lifetime values read all history before D: late data on day D updates every later day
    through this mapping (automation keeps the latest eight current: ml_platform.automation)."""
    from ml_platform.curated.table import OPEN_DAYS

    graph = defs.resolve_asset_graph()
    mapping = graph.get_partition_mapping(dg.AssetKey("user_activity"), dg.AssetKey("clean_events"))
    assert (type(mapping).__name__, mapping.start_offset, mapping.end_offset) == (
        "TimeWindowPartitionMapping",
        -OPEN_DAYS,
        -1,
    )
    same_day = graph.get_partition_mapping(dg.AssetKey("user_daily_features"), dg.AssetKey("clean_events"))
    assert (same_day.start_offset, same_day.end_offset) == (0, 0)
