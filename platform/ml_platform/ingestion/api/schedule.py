"""The daily schedule of a REST API source: yesterday's partition, shortly after midnight UTC."""

import datetime as dt
import os

import dagster as dg

from ml_platform import settings
from ml_platform.ingestion.api.spec import ApiSourceSpec
from ml_platform.ingestion.raw_asset import own_checks


def api_schedule(spec: ApiSourceSpec, raw: dg.AssetsDefinition) -> dg.ScheduleDefinition | None:
    """Daily, shortly after midnight UTC: yesterday's partition, once the API has the full day.

    It runs by default only if the base URL variable is set when the definitions load: without an
    endpoint every run would fail at resource setup, so a fresh `make dev` (no API configured)
    stays quiet instead of producing a failed run a day. Starting or stopping it in the UI
    overrides the default.
    """
    if spec.schedule_cron is None:
        return None
    configured = bool(os.environ.get(spec.base_url_env))
    first_day = dt.date.fromisoformat(settings.partitions_start_date())

    @dg.schedule(
        name=f"{spec.name}_daily_schedule",
        cron_schedule=spec.schedule_cron,
        execution_timezone="UTC",
        target=dg.AssetSelection.assets(raw.key).without_checks() | dg.AssetSelection.checks(*own_checks(raw)),
        default_status=dg.DefaultScheduleStatus.RUNNING if configured else dg.DefaultScheduleStatus.STOPPED,
        description=f"Fetches yesterday's (UTC) {spec.name} observations; needs {spec.base_url_env}.",
    )
    def _daily(context: dg.ScheduleEvaluationContext):
        at = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
        day = at.astimezone(dt.UTC).date() - dt.timedelta(days=1)
        if day < first_day:
            return dg.SkipReason(f"{day} is before the first partition {first_day}")
        return dg.RunRequest(run_key=f"{spec.name}:{day.isoformat()}", partition_key=day.isoformat())

    return _daily
