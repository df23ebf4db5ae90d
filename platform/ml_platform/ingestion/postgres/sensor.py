"""The change sensor of a PostgreSQL source: requests the raw partitions whose rows changed."""

import datetime as dt
import json
import os

import dagster as dg

from ml_platform import settings
from ml_platform.ingestion.postgres.connection import PostgresResource, PostgresSourceError, attached
from ml_platform.ingestion.postgres.extract import changed_days
from ml_platform.ingestion.postgres.spec import PostgresSourceSpec
from ml_platform.ingestion.raw_asset import own_checks
from ml_platform.warehouse.sql import utc_iso


def change_sensor(
    spec: PostgresSourceSpec, raw: dg.AssetsDefinition, resource: PostgresResource
) -> dg.SensorDefinition:
    """Requests the raw partition of each creation day whose rows changed, once per change.

    The cursor is the newest updated_at seen plus, per day, the newest updated_at already requested
    for days changed within the overlap (re-read every tick), so a day is requested again only when
    its newest updated_at moved. run_key = <source>:<day>:<newest updated_at>: deterministic.
    """
    partitions_def = raw.partitions_def

    @dg.sensor(
        name=f"{spec.name}_change_sensor",
        description=f"Requests {raw.key.to_user_string()} partitions when rows of {spec.table} change.",
        asset_selection=[raw.key],
        minimum_interval_seconds=settings.sensor_interval_seconds(),
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def _sensor(context: dg.SensorEvaluationContext):
        missing = [var for var in spec.env_vars.values() if not os.environ.get(var)]
        if missing:
            return dg.SkipReason(
                f"{spec.name}: PostgreSQL source not configured: environment variable(s) {', '.join(missing)} not set"
            )
        try:
            with dg.build_resources({"source": resource}) as resources:
                source: PostgresResource = resources.source
        except dg.DagsterInvalidConfigError:
            return dg.SkipReason(
                f"{spec.name}: PostgreSQL source misconfigured: {spec.env_vars['port']} must be an integer"
            )
        cursor = json.loads(context.cursor) if context.cursor else {"hwm": None, "edge": {}}
        since = dt.datetime.fromisoformat(cursor["hwm"].rstrip("Z")) if cursor["hwm"] else None
        try:
            with attached(source, spec) as pg:
                changes = changed_days(pg, source, spec, since)
        except PostgresSourceError as exc:
            return dg.SkipReason(
                f"{spec.name}: PostgreSQL server at {source.location} unreachable or refusing the connection: {exc.detail}"
            )
        if not changes:
            return dg.SkipReason(f"{spec.name}: no changes in {spec.table}")
        valid_keys = set(partitions_def.get_partition_keys(dynamic_partitions_store=context.instance))
        edge = dict(cursor["edge"])
        runs = []
        for day, newest in changes:
            partition, mark = day.isoformat(), utc_iso(newest)
            if edge.get(partition) == mark:
                continue
            if partition not in valid_keys:
                context.log.warning(
                    f"{spec.name}: rows created on {partition} are outside the partitions; not requested"
                )
                continue
            runs.append(
                dg.RunRequest(
                    run_key=f"{spec.name}:{partition}:{mark}",
                    partition_key=partition,
                    tags={"ml_platform/source": spec.name},
                    asset_check_keys=own_checks(raw),
                )
            )
        high = max([since, *(newest for _, newest in changes)], key=lambda t: t or dt.datetime.min)
        floor = high - dt.timedelta(minutes=spec.overlap_minutes)
        # Only days that the next tick re-reads (changed within the overlap) need remembering.
        edge = {
            p: m
            for p, m in {**edge, **{d.isoformat(): utc_iso(n) for d, n in changes}}.items()
            if dt.datetime.fromisoformat(m.rstrip("Z")) > floor
        }
        new_cursor = json.dumps({"hwm": utc_iso(high), "edge": dict(sorted(edge.items()))})
        if not runs:
            return dg.SensorResult(skip_reason=f"{spec.name}: no new changes in {spec.table}", cursor=new_cursor)
        return dg.SensorResult(run_requests=runs, cursor=new_cursor)

    return _sensor
