"""The API client against the real local fake weather API, with injected faults and fake time.

Sleeps are recorded, not slept, and the fake clock advances by exactly what was slept, so waits
(backoff, Retry-After, rate-limit spacing) are checked exactly.
"""

from __future__ import annotations

import datetime as dt
import json
from email.utils import format_datetime

import pytest

from ml_platform.demo.weather_api import HISTORY_PATH, WeatherApiServer, observations
from ml_platform.ingestion.api.client import ApiClient, ApiError, equal_jitter

KEY = "sk-test-4f1c9a7e-secret"
PARAMS = {"location": "berlin", "date": "2026-01-05"}


class FakeTime:
    """Monotonic clock that only moves when something sleeps; every sleep is recorded."""

    def __init__(self):
        self.t = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


@pytest.fixture
def server():
    with WeatherApiServer(api_key=KEY) as srv:
        yield srv


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def make_client(server, fake_time, **options) -> ApiClient:
    defaults = dict(
        api_key=KEY,
        requests_per_second=None,
        max_attempts=5,
        backoff_base_seconds=0.5,
        backoff_max_seconds=4.0,
        timeout_seconds=2.0,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        jitter=lambda delay: delay,
    )
    return ApiClient(server.url, **{**defaults, **options})


def test_ok_response_is_the_days_observations(server, fake_time):
    with make_client(server, fake_time) as client:
        response = client.get(HISTORY_PATH, PARAMS)
    body = json.loads(response.text)
    assert response.status == 200 and response.attempts == 1
    assert body["hourly"] == observations("berlin", dt.date(2026, 1, 5))
    assert response.url == f"{server.url}{HISTORY_PATH}?location=berlin&date=2026-01-05"
    assert fake_time.sleeps == []
    assert [r.had_api_key for r in server.requests] == [True]


def test_5xx_retried_with_exact_exponential_backoff(server, fake_time):
    server.faults.fail(503, times=2).fail(500, times=3)
    with make_client(server, fake_time, max_attempts=6) as client:
        response = client.get(HISTORY_PATH, PARAMS)
    assert response.status == 200 and response.attempts == 6
    # base 0.5 doubling, capped at 4.0
    assert fake_time.sleeps == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert [r.status for r in server.requests] == [503, 503, 500, 500, 500, 200]


def test_default_jitter_stays_between_half_and_full_delay():
    for _ in range(200):
        assert 2.0 <= equal_jitter(4.0) <= 4.0


def test_retry_after_seconds_is_honoured_instead_of_backoff(server, fake_time):
    server.faults.rate_limit(retry_after="7")
    with make_client(server, fake_time) as client:
        response = client.get(HISTORY_PATH, PARAMS)
    assert response.status == 200 and response.attempts == 2
    assert fake_time.sleeps == [7.0]


def test_retry_after_http_date_is_honoured(server, fake_time):
    now = dt.datetime(2026, 1, 6, 12, 0, 0, tzinfo=dt.UTC)
    server.faults.rate_limit(retry_after=format_datetime(now + dt.timedelta(seconds=5), usegmt=True))
    with make_client(server, fake_time, now=lambda: now) as client:
        response = client.get(HISTORY_PATH, PARAMS)
    assert response.status == 200
    assert fake_time.sleeps == [5.0]


def test_429_without_retry_after_falls_back_to_backoff(server, fake_time):
    server.faults.rate_limit(retry_after=None, times=2)
    with make_client(server, fake_time) as client:
        client.get(HISTORY_PATH, PARAMS)
    assert fake_time.sleeps == [0.5, 1.0]


def test_rate_limit_spaces_request_starts(server, fake_time):
    with make_client(server, fake_time, requests_per_second=4) as client:
        for day in ("2026-01-05", "2026-01-06", "2026-01-07", "2026-01-08"):
            client.get(HISTORY_PATH, {"location": "london", "date": day})
    assert fake_time.sleeps == [0.25, 0.25, 0.25]


def test_rate_limit_covers_retries_too(server, fake_time):
    # A 0.1 s backoff is shorter than the 0.5 s spacing: the limiter adds the rest.
    server.faults.fail(500)
    with make_client(server, fake_time, requests_per_second=2, backoff_base_seconds=0.1) as client:
        client.get(HISTORY_PATH, PARAMS)
    assert fake_time.sleeps == [0.1, pytest.approx(0.4)]


def test_timeout_is_retried(server, fake_time):
    server.faults.slow(1.5)
    with make_client(server, fake_time, timeout_seconds=0.3) as client:
        response = client.get(HISTORY_PATH, PARAMS)
    assert response.status == 200 and response.attempts == 2
    assert fake_time.sleeps == [0.5]


def test_malformed_body_is_retried(server, fake_time):
    server.faults.malformed()
    with make_client(server, fake_time) as client:
        response = client.get(HISTORY_PATH, PARAMS)
    assert response.attempts == 2 and json.loads(response.text)["hourly"]
    assert fake_time.sleeps == [0.5]


def test_gives_up_after_max_attempts_naming_url_and_status_without_key(server, fake_time):
    server.faults.fail(503, times=10)
    with make_client(server, fake_time, max_attempts=3) as client, pytest.raises(ApiError) as raised:
        client.get(HISTORY_PATH, PARAMS)
    message = str(raised.value)
    assert f"{server.url}{HISTORY_PATH}?location=berlin&date=2026-01-05" in message
    assert "after 3 attempts" in message and "503" in message
    assert KEY not in message and KEY not in repr(raised.value.args)
    assert raised.value.status == 503 and raised.value.retryable
    assert len(server.requests) == 3
    assert fake_time.sleeps == [0.5, 1.0]


def test_credentials_in_the_base_url_never_reach_the_error(server, fake_time):
    server.faults.fail(502, times=2)
    base = server.url.replace("http://", "http://user:hunter2@")
    with (
        ApiClient(base, max_attempts=2, sleep=fake_time.sleep, clock=fake_time.clock, jitter=lambda d: d) as client,
        pytest.raises(ApiError) as raised,
    ):
        client.get(HISTORY_PATH, PARAMS)
    assert "hunter2" not in str(raised.value) and server.url in str(raised.value)


def test_connection_refused_is_retried_then_reported(fake_time):
    with WeatherApiServer() as srv:
        url = srv.url  # a port that was free a moment ago and is closed now
    with (
        ApiClient(
            url,
            max_attempts=3,
            backoff_base_seconds=0.5,
            sleep=fake_time.sleep,
            clock=fake_time.clock,
            jitter=lambda d: d,
        ) as client,
        pytest.raises(ApiError) as raised,
    ):
        client.get(HISTORY_PATH, PARAMS)
    assert "ConnectionError" in str(raised.value) and url in str(raised.value)
    assert fake_time.sleeps == [0.5, 1.0]


def test_404_fails_at_once_without_retry(server, fake_time):
    with make_client(server, fake_time) as client, pytest.raises(ApiError) as raised:
        client.get("/v1/nothing-here", PARAMS)
    assert raised.value.status == 404 and not raised.value.retryable
    assert "404" in str(raised.value) and "/v1/nothing-here" in str(raised.value)
    assert len(server.requests) == 1 and fake_time.sleeps == []


def test_wrong_key_fails_at_once_and_is_not_shown(server, fake_time):
    with make_client(server, fake_time, api_key="not-the-key") as client, pytest.raises(ApiError) as raised:
        client.get(HISTORY_PATH, PARAMS)
    assert raised.value.status == 401 and "not-the-key" not in str(raised.value)
    assert len(server.requests) == 1
