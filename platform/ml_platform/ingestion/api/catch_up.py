"""The catch-up sensor of a REST API source: it fetches the complete days the daily schedule missed.

The daily schedule fetches yesterday at 00:15 UTC, and only if the platform is up then: the days
before a first start (from the first partition on), the nights the platform was down and the days
before a source was configured are never fetched by it. `<name>_catch_up_sensor` fetches them:
every day from the first partition to the newest day the schedule should have fetched by now that
has no materialization, no run in progress and no failed one.

- "Should have fetched by now": the day before the schedule's latest tick that is at least
  `SCHEDULE_GRACE` old. Yesterday is left to the schedule until its tick and the grace have passed,
  so the two never request the same day; the current day is never complete, so never fetched.
- Missing days go in runs of consecutive days, at most `CHUNK_DAYS` each, newest first: one
  single-run range per chunk (the raw asset's backfill policy), so a year of history is some fifty
  runs, not 365, and no run holds the warehouse slot much longer than a week's requests take.
- A failed day is left to the operator (the failure is alerted; re-run it from the asset page):
  asking a failing API again on every tick would only pile up failed runs. Run keys name the
  chunk, so a chunk is requested once.

It runs by default exactly when the schedule does (the base URL variable is set when the
definitions load) unless `ML_PLATFORM_API_CATCH_UP=false`. Starting or stopping it in the UI
overrides the default.
"""

from __future__ import annotations

import datetime as dt
import os

import dagster as dg

from ml_platform import settings
from ml_platform.ingestion.api.spec import ApiSourceSpec
from ml_platform.ingestion.raw_asset import own_checks

# The schedule's run is created within seconds of its tick; half an hour also covers a daemon
# that was busy or restarting then.
SCHEDULE_GRACE = dt.timedelta(minutes=30)
CHUNK_DAYS = 7
# Days become due once a day: a tick a minute is plenty, and the first comes as the daemon starts.
INTERVAL_SECONDS = 60
SOURCE_TAG = "ml_platform/source"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def last_due_day(spec: ApiSourceSpec, now: dt.datetime) -> dt.date:
    """The newest day the daily schedule should have fetched by `now`: the day before its latest
    tick at least SCHEDULE_GRACE old (the schedule fetches the day before its tick, in UTC)."""
    # Resolved on a tick, not when the definitions load (the fence's rule: turned off, never resolved).
    from ml_platform.dagster_private import get_latest_completed_cron_tick

    tick = get_latest_completed_cron_tick(spec.schedule_cron, now.astimezone(dt.UTC) - SCHEDULE_GRACE, "UTC")
    return tick.astimezone(dt.UTC).date() - dt.timedelta(days=1)


def chunks(days: list[dt.date], size: int = CHUNK_DAYS) -> list[tuple[dt.date, dt.date]]:
    """(first, last) of runs of consecutive days, at most `size` days each, newest first."""
    ranges: list[tuple[dt.date, dt.date]] = []
    for day in sorted(days, reverse=True):
        if ranges and ranges[-1][0] - day == dt.timedelta(days=1) and (ranges[-1][1] - day).days < size:
            ranges[-1] = (day, ranges[-1][1])
        else:
            ranges.append((day, day))
    return ranges


def _request(spec: ApiSourceSpec, first: dt.date, last: dt.date) -> dg.RunRequest:
    tags = {SOURCE_TAG: spec.name}
    if first == last:
        return dg.RunRequest(run_key=f"{spec.name}:catch-up:{first}", partition_key=first.isoformat(), tags=tags)
    # One run for the range: the raw asset's single-run backfill policy fetches and writes it at once.
    from ml_platform.dagster_private import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    tags |= {ASSET_PARTITION_RANGE_START_TAG: first.isoformat(), ASSET_PARTITION_RANGE_END_TAG: last.isoformat()}
    return dg.RunRequest(run_key=f"{spec.name}:catch-up:{first}..{last}", tags=tags)


def api_catch_up_sensor(spec: ApiSourceSpec, raw: dg.AssetsDefinition) -> dg.SensorDefinition | None:
    """The sensor, for a source with a daily schedule (without one, nothing fetches it by itself)."""
    if spec.schedule_cron is None:
        return None
    configured = bool(os.environ.get(spec.base_url_env)) and settings.api_catch_up()
    first_day = dt.date.fromisoformat(settings.partitions_start_date())
    partitions_def = raw.partitions_def

    @dg.sensor(
        name=f"{spec.name}_catch_up_sensor",
        target=dg.AssetSelection.assets(raw.key).without_checks() | dg.AssetSelection.checks(*own_checks(raw)),
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING if configured else dg.DefaultSensorStatus.STOPPED,
        description=(
            f"Fetches the complete {spec.name} days since the first partition that the daily schedule missed "
            f"(never fetched, none in progress, none failed); needs {spec.base_url_env}."
        ),
    )
    def _catch_up(context: dg.SensorEvaluationContext):
        last = last_due_day(spec, utc_now())
        if last < first_day:
            return dg.SkipReason(f"no complete day due yet: the first partition is {first_day}")
        days = [first_day + dt.timedelta(days=i) for i in range((last - first_day).days + 1)]
        status = context.instance.get_status_by_partition(raw.key, [d.isoformat() for d in days], partitions_def)
        missing = [d for d in days if (status or {}).get(d.isoformat()) is None]
        if not missing:
            return dg.SkipReason(f"every day from {first_day} to {last} is fetched, being fetched or failed")
        return [_request(spec, first, last) for first, last in chunks(missing)]

    return _catch_up
