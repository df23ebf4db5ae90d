"""Alerts: a run that fails, or a check that starts failing at ERROR, sends one JSON message.

The `alerts` sensor (RUNNING by default) reads, after its cursor, the runs that ended and the
check evaluations recorded outside runs (by a sensor, such as the landing freshness sensor). It sends:

- `run_failure` for a failed run: its job, assets, partition(s), the failure's words, each failed
  step's error, the ERROR checks it failed, and a link to the run in the UI;
- `check_failure` for a run that did not fail but left checks newly failing at ERROR
  (non-blocking checks, such as `volume`, fail without failing the run), listing those checks
  with their descriptions; and for each evaluation recorded outside a run that newly fails at ERROR.

WARN failures and canceled runs never alert. The message goes to `ML_PLATFORM_ALERT_WEBHOOK_URL`
as a JSON POST; without it every alert is only logged (`webhook.py`: one JSON line per alert,
sent or not).

No duplicate alert for the same failure. The sensor's cursor remembers:
- where it stopped reading (the storage id of the last run end, the id of the last evaluation
  outside runs), so an event is read once, however often the sensor ticks;
- which (asset, check, partition) it alerted on and has not seen pass since. A check alerts when
  it turns to failing at ERROR; re-running the partition so that it fails the same way again, or a range
  run's roll-up of its partitions, does not alert again. Once an evaluation passes (or fails only at
  WARN), a later ERROR alerts again;
- which run failures it alerted on, by scope (the run's assets and partitions) and signature (the
  failed steps and their error types). A run failing again in the same scope in the same way (a
  retry, an automation re-run) does not alert again until a run of that scope succeeds;
- the failed run's ERROR checks count as alerted by its `run_failure`, so a blocking contract that
  fails its run is one message, not two.

A webhook that is down does not crash the sensor. The failed alert is logged and kept in the
cursor, and later ticks send it again, oldest first, until the receiver takes it or it has waited
`RETRY_FOR_SECONDS` (then it is dropped, logged). Once a send fails, the rest of that tick's alerts
wait for the next tick without being tried, so an unreachable receiver costs one timeout per tick.
At most `MAX_PENDING` alerts wait (and `MAX_REMEMBERED` run failures are remembered); beyond
that the oldest are dropped (logged).

A first tick (no cursor) starts from the latest run end and evaluation: alerts are about what
happens from then on, not about a history the sensor did not watch (as Dagster's run-failure
sensors do). `make dev` runs it from the instance's first tick, so nothing is missed there.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field

import dagster as dg

from ml_platform import settings
from ml_platform.monitoring import webhook
from ml_platform.monitoring.ended_runs import (
    CheckEvaluation,
    EndedRun,
    check_evaluations,
    ended_runs,
    latest_end,
    latest_runless_cursor,
    per_partition,
    run_assets,
    run_partitions,
    runless_evaluations,
    step_failures,
)

ALERT_SENSOR = "alerts"
BATCH = 50
MAX_PENDING = 100
MAX_REMEMBERED = 500
RETRY_FOR_SECONDS = 3600

CheckKey = tuple[str, str, str | None]  # asset, check, partition


@dataclass
class AlertState:
    """What the sensor remembers between ticks (its cursor, as JSON)."""

    after: int = 0  # storage id of the last run end read
    runless: str | None = None  # event cursor of the last evaluation read outside runs (None: none yet)
    failing_checks: set[CheckKey] = field(default_factory=set)  # alerted, not passed since
    failing_runs: dict[str, str] = field(default_factory=dict)  # scope -> signature alerted, oldest first
    pending: list[dict] = field(default_factory=list)  # {"alert", "attempts", "waiting_since"}

    @classmethod
    def load(cls, cursor: str | None, instance: dg.DagsterInstance) -> AlertState:
        if not cursor:
            return cls(after=latest_end(instance), runless=latest_runless_cursor(instance))
        data = json.loads(cursor)
        return cls(
            data["after"],
            data["runless"],
            {tuple(k) for k in data["failing_checks"]},
            data["failing_runs"],
            data["pending"],
        )

    def dump(self) -> str:
        return json.dumps(
            {
                "after": self.after,
                "runless": self.runless,
                "failing_checks": sorted(self.failing_checks, key=lambda k: (k[0], k[1], k[2] or "")),
                "failing_runs": self.failing_runs,
                "pending": self.pending,
            }
        )

    def newly_failing(self, evaluations: list[CheckEvaluation]) -> list[CheckEvaluation]:
        """The evaluations that turn their (asset, check, partition) to failing at ERROR; every
        evaluation updates what is failing, in the order it was recorded."""
        new = []
        for e in per_partition(evaluations):
            key = (e.asset, e.check, e.partition)
            if not e.failed_at_error:
                self.failing_checks.discard(key)
            elif key not in self.failing_checks:
                self.failing_checks.add(key)
                new.append(e)
        return new

    def run_failure_is_new(self, scope: str, signature: str) -> bool:
        if self.failing_runs.get(scope) == signature:
            return False
        self.failing_runs.pop(scope, None)  # re-inserted last: the oldest are dropped first
        self.failing_runs[scope] = signature
        while len(self.failing_runs) > MAX_REMEMBERED:
            self.failing_runs.pop(next(iter(self.failing_runs)))
        return True


def _check(e: CheckEvaluation) -> dict:
    return {
        "asset": e.asset,
        "check": e.check,
        "partition": e.partition,
        "severity": e.severity,
        "blocking": e.blocking,
        "description": e.description,
    }


def run_alert(instance: dg.DagsterInstance, ended: EndedRun, state: AlertState) -> dict | None:
    """The one alert an ended run deserves, if any (updating `state`)."""
    run_id = ended.run.run_id
    evaluations = check_evaluations(instance, run_id)
    new_checks = state.newly_failing(evaluations)
    assets, partitions = run_assets(instance, ended.run), run_partitions(ended.run)
    scope = json.dumps([assets, partitions], sort_keys=True)
    alert = {
        "run_id": run_id,
        "job": ended.run.job_name,
        "status": ended.status,
        "assets": assets,
        **partitions,
        "run_url": f"{settings.ui_url()}/runs/{run_id}",
    }
    if ended.status == "SUCCESS":
        state.failing_runs.pop(scope, None)
    if ended.status == "FAILURE":
        steps = step_failures(instance, run_id)
        signature = json.dumps(sorted((s["step"], s["error_type"]) for s in steps))
        if state.run_failure_is_new(scope, signature):
            failed = [_check(e) for e in per_partition(evaluations) if e.failed_at_error]
            return {
                "kind": "run_failure",
                "alert_id": f"run_failure:{run_id}",
                **alert,
                "error": ended.message,
                "failed_steps": steps,
                "failed_checks": failed,
            }
    if new_checks:
        return {
            "kind": "check_failure",
            "alert_id": f"check_failure:{run_id}",
            **alert,
            "failed_checks": [_check(e) for e in new_checks],
        }
    return None


def runless_alert(evaluation: CheckEvaluation) -> dict:
    """The alert for an evaluation recorded outside any run that newly fails at ERROR."""
    partition = f"/{evaluation.partition}" if evaluation.partition else ""
    return {
        "kind": "check_failure",
        # The evaluation event's id: a later failure of the same check is another alert.
        "alert_id": f"check_failure:{evaluation.asset}/{evaluation.check}{partition}@{evaluation.event_id}",
        "run_id": None,
        "recorded_at": dt.datetime.fromtimestamp(evaluation.recorded_at, dt.UTC).isoformat(),
        "assets": [evaluation.asset],
        "failed_checks": [_check(evaluation)],
        "asset_url": f"{settings.ui_url()}/assets/{evaluation.asset}?view=checks",
    }


class Sender:
    """Sends (or only logs) one tick's alerts; after a failed send the rest wait for the next tick."""

    def __init__(self, url: str | None, state: AlertState, log):
        self.url, self.state, self.loggers = url, state, (log,)
        self.down, self.sent = False, 0

    def send(self, alert: dict, attempts: int = 0, waiting_since: float | None = None) -> None:
        if self.url is None:
            webhook.log_line("not_configured", alert, attempts, loggers=self.loggers)
            return
        if not self.down:
            attempts += 1
            error = webhook.post(self.url, alert)
            if error is None:
                webhook.log_line("sent", alert, attempts, loggers=self.loggers)
                self.sent += 1
                return
            webhook.log_line("failed", alert, attempts, error, loggers=self.loggers)
            self.down = True
        waiting_since = waiting_since or time.time()
        if time.time() - waiting_since > RETRY_FOR_SECONDS:
            webhook.log_line("dropped", alert, attempts, f"undelivered for {RETRY_FOR_SECONDS} s", self.loggers)
            return
        self.state.pending.append({"alert": alert, "attempts": attempts, "waiting_since": waiting_since})


def alert_sensor() -> dg.SensorDefinition:
    @dg.sensor(
        name=ALERT_SENSOR,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=settings.monitoring_interval_seconds(),
        description=(
            "Sends a JSON alert for each failed run and each check newly failing at ERROR to "
            "ML_PLATFORM_ALERT_WEBHOOK_URL (logged either way), never twice for the same failure."
        ),
    )
    def _alerts(context: dg.SensorEvaluationContext):
        state = AlertState.load(context.cursor, context.instance)
        sender = Sender(settings.alert_webhook_url(), state, context.log)
        waiting, state.pending = state.pending, []
        for item in waiting:
            sender.send(item["alert"], item["attempts"], item["waiting_since"])
        ended, state.after = ended_runs(context.instance, state.after, BATCH)
        alerts = [run_alert(context.instance, run, state) for run in ended]
        evaluations, state.runless = runless_evaluations(context.instance, state.runless, BATCH)
        alerts += [runless_alert(e) for e in state.newly_failing(evaluations)]
        for alert in alerts:
            if alert is not None:
                sender.send(alert)
        for dropped in state.pending[:-MAX_PENDING]:
            webhook.log_line(
                "dropped", dropped["alert"], dropped["attempts"], "too many alerts waiting", (context.log,)
            )
        state.pending = state.pending[-MAX_PENDING:]
        context.update_cursor(state.dump())
        new = sum(a is not None for a in alerts)
        return dg.SkipReason(f"{new} new alert(s), {sender.sent} sent, {len(state.pending)} waiting")

    return _alerts
