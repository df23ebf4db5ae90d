"""Sending one alert: a JSON POST to the webhook, and one JSON log line saying what happened.

Every alert is logged whether or not it was sent, as one line of JSON on the
`ml_platform.monitoring.alerts` logger (and in the sensor's tick log in the UI):
`{"log": "alert", "delivery": "sent" | "failed" | "dropped" | "not_configured", "attempts": n,
"error": ..., "alert": {...}}`. The webhook URL itself is never logged: it may carry a token.
"""

from __future__ import annotations

import json
import logging

import requests

LOGGER = logging.getLogger("ml_platform.monitoring.alerts")
TIMEOUT_SECONDS = 5


def post(url: str, alert: dict) -> str | None:
    """POST the alert; None when the receiver took it (2xx), else what went wrong."""
    try:
        response = requests.post(url, json=alert, timeout=TIMEOUT_SECONDS)
    except requests.RequestException as error:
        # The exception's text names the URL; only its kind is kept.
        return f"{type(error).__name__}: receiver unreachable"
    return None if response.ok else f"HTTP {response.status_code}"


def log_line(delivery: str, alert: dict, attempts: int, error: str | None = None, loggers=()) -> str:
    """Log one alert as one JSON line (also on `loggers`, e.g. the sensor's); returns the line.

    `delivery`: sent, failed (kept for the next tick), dropped (given up), not_configured (no URL).
    `attempts`: the sends tried so far, this one included."""
    line = json.dumps(
        {"log": "alert", "delivery": delivery, "attempts": attempts, "error": error, "alert": alert}, sort_keys=True
    )
    level = logging.ERROR if delivery in ("failed", "dropped") else logging.INFO
    for logger in (LOGGER, *loggers):
        logger.log(level, line)
    return line
