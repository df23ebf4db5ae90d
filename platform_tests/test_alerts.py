"""Alerts: a failed run or a check newly failing at ERROR posts one JSON message, never twice.

Real runs of the events source on a real Dagster instance (monitoring_scenario), the `alerts`
sensor ticked as the daemon would, and a real HTTP receiver on 127.0.0.1 that records what it
is sent (or that is not there yet, to show a down webhook is logged and sent again later).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from helpers import run_check, tick
from ml_platform.monitoring.alerts import ALERT_SENSOR
from monitoring_scenario import BROKEN_DAY, HALF_DAY, WEEK, events_runner, run_broken_day, run_week

UI = "http://dagster.test:3000"
CONTRACT_FAILURE = {
    "asset": "clean_events",
    "check": "contract",
    "partition": BROKEN_DAY,
    "severity": "ERROR",
    "blocking": True,
    "description": "CleanEvents broken: quarantined_fraction<=0.1",
}


class Receiver:
    """A webhook receiver: records each POSTed JSON body with its content type."""

    def __init__(self, port: int = 0):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.headers["Content-Type"], json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hooks/platform"

    @property
    def messages(self) -> list[dict]:
        assert {content_type for content_type, _ in self.received} <= {"application/json"}
        return [body for _, body in self.received]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver(monkeypatch):
    r = Receiver()
    monkeypatch.setenv("ML_PLATFORM_ALERT_WEBHOOK_URL", r.url)
    yield r
    r.close()


@pytest.fixture
def runner(instance, data_dir, monkeypatch):
    monkeypatch.setenv("ML_PLATFORM_UI_URL", UI)
    return events_runner(instance, data_dir)


class Alerts:
    """The alert sensor, ticked with its cursor carried over, as the daemon does."""

    def __init__(self, runner):
        self.runner, self.cursor = runner, None

    def tick(self) -> str:
        result = tick(self.runner.defs, self.runner.instance, ALERT_SENSOR, self.cursor)
        self.cursor = result.cursor
        return result.skip_message


def _logged(caplog) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "ml_platform.monitoring.alerts"]


def test_a_check_newly_failing_at_error_alerts_once(runner, receiver):
    alerts = Alerts(runner)
    assert alerts.tick() == "0 new alert(s), 0 sent, 0 waiting"
    _, clean = run_week(runner)
    assert alerts.tick() == "1 new alert(s), 1 sent, 0 waiting"
    # The half day's volume is an ERROR; the late day's late arrivals only a WARN: not alerted.
    assert receiver.messages == [
        {
            "kind": "check_failure",
            "alert_id": f"check_failure:{clean.run_id}",
            "run_id": clean.run_id,
            "job": "__ephemeral_asset_job__",
            "status": "SUCCESS",
            "assets": ["clean_events"],
            "partition_range": [WEEK[0], WEEK[-1]],
            "run_url": f"{UI}/runs/{clean.run_id}",
            "failed_checks": [
                {
                    "asset": "clean_events",
                    "check": "volume",
                    "partition": HALF_DAY,
                    "severity": "ERROR",
                    "blocking": False,
                    "description": (
                        f"{HALF_DAY}: 200 rows against 400 expected (median of 6 previous days), "
                        "10.0 robust deviations below, beyond 6"
                    ),
                }
            ],
        }
    ]
    assert alerts.tick() == "0 new alert(s), 0 sent, 0 waiting"
    # The half day again, alone: the same check fails the same way; nothing new to say.
    again = runner.run("clean_events", partition=HALF_DAY)
    volume = run_check(again, "clean_events", "volume")
    assert (volume.passed, volume.severity.value, volume.partition) == (False, "ERROR", HALF_DAY)
    assert alerts.tick() == "0 new alert(s), 0 sent, 0 waiting"
    assert len(receiver.messages) == 1


def test_a_failed_run_alerts_once_with_its_error_and_its_broken_contract(runner, receiver):
    alerts = Alerts(runner)
    alerts.tick()
    _, clean = run_broken_day(runner)
    assert alerts.tick() == "1 new alert(s), 1 sent, 0 waiting"
    assert receiver.messages == [
        {
            "kind": "run_failure",
            "alert_id": f"run_failure:{clean.run_id}",
            "run_id": clean.run_id,
            "job": "__ephemeral_asset_job__",
            "status": "FAILURE",
            "assets": ["clean_events"],
            "partition": BROKEN_DAY,
            "run_url": f"{UI}/runs/{clean.run_id}",
            "error": "Execution of run for \"__ephemeral_asset_job__\" failed. Steps failed: ['clean_events'].",
            "failed_steps": [
                {
                    "step": "clean_events",
                    "error_type": "DagsterAssetCheckFailedError",
                    "error": (
                        "dagster._core.errors.DagsterAssetCheckFailedError: 1 blocking asset check failed "
                        "with ERROR severity: clean_events: contract"
                    ),
                }
            ],
            # The blocking check that failed the run is in its message, not in a second one.
            "failed_checks": [CONTRACT_FAILURE],
        }
    ]
    # Run again, it fails the same way: the same failure, no second alert.
    runner.run("clean_events", partition=BROKEN_DAY, expect_success=False)
    assert alerts.tick() == "0 new alert(s), 0 sent, 0 waiting"
    assert alerts.tick() == "0 new alert(s), 0 sent, 0 waiting"
    assert len(receiver.messages) == 1


def test_the_first_tick_starts_from_now_not_from_history(runner, receiver):
    run_broken_day(runner)
    alerts = Alerts(runner)
    assert alerts.tick() == "0 new alert(s), 0 sent, 0 waiting"
    # A failure after the first tick is news; with nothing remembered, it alerts.
    again = runner.run("clean_events", partition=BROKEN_DAY, expect_success=False)
    assert alerts.tick() == "1 new alert(s), 1 sent, 0 waiting"
    assert [(m["kind"], m["run_id"]) for m in receiver.messages] == [("run_failure", again.run_id)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_webhook_that_is_down_is_logged_and_sent_once_when_back(runner, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="ml_platform.monitoring.alerts")
    port = _free_port()
    monkeypatch.setenv("ML_PLATFORM_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{port}/hooks/platform")
    alerts = Alerts(runner)
    alerts.tick()
    _, clean = run_broken_day(runner)
    assert alerts.tick() == "1 new alert(s), 0 sent, 1 waiting"
    [failed] = _logged(caplog)
    assert (failed["log"], failed["delivery"], failed["attempts"], failed["error"]) == (
        "alert",
        "failed",
        1,
        "ConnectionError: receiver unreachable",
    )
    assert (failed["alert"]["alert_id"], failed["alert"]["failed_checks"]) == (
        f"run_failure:{clean.run_id}",
        [CONTRACT_FAILURE],
    )
    receiver = Receiver(port)
    try:
        assert alerts.tick() == "0 new alert(s), 1 sent, 0 waiting"
        assert receiver.messages == [failed["alert"]]
        assert [(line["delivery"], line["attempts"]) for line in _logged(caplog)] == [("failed", 1), ("sent", 2)]
        assert alerts.tick() == "0 new alert(s), 0 sent, 0 waiting"
        assert len(receiver.messages) == 1
    finally:
        receiver.close()


def test_without_a_webhook_alerts_are_only_logged(runner, monkeypatch, caplog):
    monkeypatch.delenv("ML_PLATFORM_ALERT_WEBHOOK_URL", raising=False)
    caplog.set_level(logging.INFO, logger="ml_platform.monitoring.alerts")
    alerts = Alerts(runner)
    alerts.tick()
    _, clean = run_broken_day(runner)
    assert alerts.tick() == "1 new alert(s), 0 sent, 0 waiting"
    [line] = _logged(caplog)
    assert (line["delivery"], line["attempts"], line["error"], line["alert"]["kind"], line["alert"]["run_id"]) == (
        "not_configured",
        0,
        None,
        "run_failure",
        clean.run_id,
    )


def _report_outside_runs(instance, passed: bool, severity: str = "ERROR"):
    """A check evaluation recorded without a run, as a sensor's `SensorResult(asset_events=...)`
    is recorded by the daemon (the landing freshness sensor reports its verdicts so)."""
    instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey("raw_events"),
            check_name="landing_freshness",
            passed=passed,
            severity=dg.AssetCheckSeverity(severity),
            description=None if passed else "events: newest data landed 3 days ago; ERROR: older than 2 days.",
            metadata={"lag_hours": 72.0},
        )
    )


def _outside_runs(instance) -> list:
    """The evaluations recorded outside runs, oldest first."""
    return instance.get_records_for_run("", of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records


def test_a_check_failing_outside_any_run_alerts_once_and_again_after_it_passed(runner, receiver):
    alerts = Alerts(runner)
    alerts.tick()
    _report_outside_runs(runner.instance, passed=False)
    assert alerts.tick() == "1 new alert(s), 1 sent, 0 waiting"
    [first] = _outside_runs(runner.instance)

    def expected(record):
        return {
            "kind": "check_failure",
            "alert_id": f"check_failure:raw_events/landing_freshness@{record.storage_id}",
            "run_id": None,
            "recorded_at": dt.datetime.fromtimestamp(record.timestamp, dt.UTC).isoformat(),
            "assets": ["raw_events"],
            "asset_url": f"{UI}/assets/raw_events?view=checks",
            "failed_checks": [
                {
                    "asset": "raw_events",
                    "check": "landing_freshness",
                    "partition": None,
                    "severity": "ERROR",
                    "blocking": False,
                    "description": "events: newest data landed 3 days ago; ERROR: older than 2 days.",
                }
            ],
        }

    assert receiver.messages == [expected(first)]
    # Reported again, still failing: nothing new. A WARN does not alert, and ends the failure.
    _report_outside_runs(runner.instance, passed=False)
    assert alerts.tick() == "0 new alert(s), 0 sent, 0 waiting"
    _report_outside_runs(runner.instance, passed=False, severity="WARN")
    assert alerts.tick() == "0 new alert(s), 0 sent, 0 waiting"
    _report_outside_runs(runner.instance, passed=False)
    assert alerts.tick() == "1 new alert(s), 1 sent, 0 waiting"
    *_, last = _outside_runs(runner.instance)
    assert receiver.messages == [expected(first), expected(last)]
