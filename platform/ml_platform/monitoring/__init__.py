"""Observability from the Dagster instance: a quality report per run, alerts, Prometheus metrics.

Everything here reads what runs recorded in Dagster (run ends, materialization metadata, check
evaluations) and never opens the warehouse: DuckDB allows one writing process, and another
process's write lock blocks even read-only connects, so a monitor that opened it would stall or
fail while the platform works, and could stall the platform in turn.

- `quality_report.py`: the `quality_reports` sensor writes `<data>/reports/quality/<run_id>.json`.
- `alerts.py` (+ `webhook.py`): the `alerts` sensor posts failed runs and checks newly failing at
  ERROR to `ML_PLATFORM_ALERT_WEBHOOK_URL`, logged as JSON, never twice for the same failure.
- `metrics.py` (served by `python -m ml_platform metrics`): rows, quarantine, runs, failing checks and
  freshness per source in Prometheus' text format, served on 127.0.0.1.
- `ended_runs.py`: what the two sensors share, the runs that ended after a cursor and their events.
"""

from __future__ import annotations

import dagster as dg

from ml_platform.monitoring.alerts import alert_sensor
from ml_platform.monitoring.quality_report import quality_report_sensor


def monitoring_sensors() -> list[dg.SensorDefinition]:
    """The report and alert sensors, RUNNING by default."""
    return [quality_report_sensor(), alert_sensor()]
