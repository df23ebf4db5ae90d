"""A small HTTP client for API sources: rate limited, retrying what is worth retrying.

- 5xx, connection errors, timeouts and 2xx bodies that are not JSON (truncated responses) are
  retried with exponential backoff and jitter: base * 2^(attempt-1), capped, then jittered.
- 429 waits what the server's Retry-After says (seconds or an HTTP date) instead of the
  backoff; without a readable Retry-After it falls back to the backoff.
- Any other 4xx fails at once: asking again will not help.
- A client-side rate limiter spaces request starts (retries included) at least
  1 / requests_per_second apart.
- After max_attempts it raises `ApiError` naming the URL and the last status.

The API key travels in a header only. URLs in errors and logs have credentials removed, and the
key is never logged. Sleep, monotonic clock, wall clock and jitter are injectable so tests can
check exact waits without waiting.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests

log = logging.getLogger(__name__)

# Module-level defaults, looked up when a client is created (tests may replace them).
_default_sleep: Callable[[float], None] = time.sleep
_default_clock: Callable[[], float] = time.monotonic


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def equal_jitter(delay: float) -> float:
    """Somewhere in [delay / 2, delay]: spreads clients out but keeps a floor."""
    return random.uniform(delay / 2, delay)


class ApiError(RuntimeError):
    """A request that failed for good; the message names the URL (no credentials) and last status."""

    def __init__(self, message: str, *, url: str, status: int | None, attempts: int, retryable: bool = True):
        super().__init__(message)
        self.url, self.status, self.attempts = url, status, attempts
        # False for client errors (4xx but 429): asking again later will not help either.
        self.retryable = retryable


@dataclass(frozen=True)
class ApiResponse:
    url: str  # without credentials
    status: int
    text: str
    fetched_at: dt.datetime  # naive UTC
    attempts: int


def redact_url(url: str) -> str:
    """The URL without user:password@ (query parameters never carry the key: it is a header)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


class RateLimiter:
    """Request starts at least `1 / per_second` apart (a token bucket of one token), thread safe."""

    def __init__(self, per_second: float | None, clock: Callable[[], float], sleep: Callable[[float], None]):
        self._interval = 1.0 / per_second if per_second else 0.0
        self._clock, self._sleep = clock, sleep
        self._next = None
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for the next slot; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            start = now if self._next is None else max(now, self._next)
            # The schedule advances from the slot, not from when sleep returned, so spacing stays
            # exact even when sleeps overshoot (or, in tests, do not really happen).
            self._next = start + self._interval
            wait = start - now
            if wait > 0:
                self._sleep(wait)
            return wait


class ApiClient:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        api_key_header: str = "X-API-Key",
        requests_per_second: float | None = 5.0,
        max_attempts: int = 5,
        backoff_base_seconds: float = 1.0,
        backoff_max_seconds: float = 30.0,
        timeout_seconds: float = 10.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
        now: Callable[[], dt.datetime] | None = None,
        jitter: Callable[[float], float] | None = None,
        logger: logging.Logger | None = None,
    ):
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = base_url.rstrip("/")
        self._headers = {"Accept": "application/json"}
        if api_key:
            self._headers[api_key_header] = api_key
        self.max_attempts = max_attempts
        self.backoff_base_seconds = backoff_base_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self.timeout_seconds = timeout_seconds
        self._session = session or requests.Session()
        self._sleep = sleep or _default_sleep
        self._now = now or _utc_now
        self._jitter = jitter or equal_jitter
        self._log = logger or log
        self._limiter = RateLimiter(requests_per_second, clock or _default_clock, self._sleep)

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def backoff(self, attempt: int) -> float:
        """Wait after failed attempt number `attempt` (1-based): capped exponential, then jittered."""
        nominal = min(self.backoff_max_seconds, self.backoff_base_seconds * 2 ** (attempt - 1))
        return max(0.0, self._jitter(nominal))

    def retry_after(self, value: str | None) -> float | None:
        """Seconds a Retry-After header asks for (delta-seconds or HTTP date); None if unreadable."""
        if not value:
            return None
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # HTTP dates are GMT
            when = when.replace(tzinfo=dt.UTC)
        return max(0.0, (when - self._now()).total_seconds())

    def url_for(self, path: str, params: Mapping[str, str] | None = None) -> str:
        url = self.base_url + path
        return f"{url}?{urlencode(params)}" if params else url

    def get(self, path: str, params: Mapping[str, str] | None = None) -> ApiResponse:
        """GET base_url + path, retried per the module's rules; the body must be JSON."""
        url = self.url_for(path, params)
        shown = redact_url(url)
        last = "no response"
        last_status = None
        for attempt in range(1, self.max_attempts + 1):
            self._limiter.acquire()
            try:
                response = self._session.get(url, headers=self._headers, timeout=self.timeout_seconds)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                # Only the exception's type: its message repeats the URL, which may hold credentials.
                last, last_status, wait = type(exc).__name__, None, self.backoff(attempt)
            else:
                status = response.status_code
                last_status = status
                if 200 <= status < 300:
                    try:
                        # JSON is UTF-8 unless the server says otherwise (RFC 8259); no guessing.
                        text = response.content.decode(response.encoding or "utf-8")
                        json.loads(text)
                    except ValueError:  # includes UnicodeDecodeError and JSONDecodeError
                        last, wait = f"{status} (body is not valid JSON)", self.backoff(attempt)
                    else:
                        return ApiResponse(
                            url=shown,
                            status=status,
                            text=text,
                            fetched_at=self._now().astimezone(dt.UTC).replace(tzinfo=None),
                            attempts=attempt,
                        )
                elif status == 429:
                    asked = self.retry_after(response.headers.get("Retry-After"))
                    last = "429 Too Many Requests"
                    wait = asked if asked is not None else self.backoff(attempt)
                elif status >= 500:
                    last, wait = f"{status} {response.reason or ''}".strip(), self.backoff(attempt)
                else:
                    raise ApiError(
                        f"GET {shown} failed with {status} {response.reason or ''}".strip()
                        + " (not retried: a client error)",
                        url=shown,
                        status=status,
                        attempts=attempt,
                        retryable=False,
                    )
            if attempt == self.max_attempts:
                break
            self._log.warning(
                "GET %s attempt %d/%d: %s; retrying in %.2fs", shown, attempt, self.max_attempts, last, wait
            )
            self._sleep(wait)
        raise ApiError(
            f"GET {shown} failed after {self.max_attempts} attempts; last status: {last}",
            url=shown,
            status=last_status,
            attempts=self.max_attempts,
        )
