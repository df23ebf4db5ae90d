"""A local fake weather history API, for tests and `make dev` demos.

    GET /v1/history?location=<id>&date=<YYYY-MM-DD>

returns the 24 hourly observations of that UTC day, each timestamped in the location's local
time with an explicit offset (so the platform's UTC normalization has work to do):

    {"location": "berlin", "date": "2026-01-05", "timezone": "Europe/Berlin",
     "hourly": [{"time": "2026-01-05T01:00:00+01:00", "temperature_c": 2.4, "humidity_pct": 81.0,
                 "precipitation_mm": 0.0, "wind_speed_kmh": 14.2}, ...]}

Values are deterministic per location, day and hour. Tests inject faults through
`server.faults` (`fail`, `rate_limit`, `slow`, `malformed`): each applies to the next matching
requests, in the order queued. Run it with `python -m ml_platform.demo.weather_api --port 8765`
and point ML_PLATFORM_WEATHER_API_URL at http://127.0.0.1:8765.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import random
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

HISTORY_PATH = "/v1/history"
API_KEY_HEADER = "X-API-Key"

# location -> (IANA zone, mean temperature °C, seasonal swing °C, mean humidity %, rain chance)
LOCATIONS = {
    "berlin": ("Europe/Berlin", 10.0, 9.5, 76.0, 0.12),
    "london": ("Europe/London", 11.5, 7.0, 80.0, 0.18),
    "new_york": ("America/New_York", 13.0, 12.0, 65.0, 0.10),
}


def _round(value: float) -> float:
    return round(value, 1)


def observations(location: str, day: dt.date) -> list[dict]:
    """The 24 hourly observations of UTC day `day` at `location`, local time with offset."""
    zone_name, mean_t, swing, mean_h, rain_chance = LOCATIONS[location]
    zone = ZoneInfo(zone_name)
    season = -math.cos(2 * math.pi * (day.timetuple().tm_yday - 15) / 365.25)  # -1 mid-January, +1 mid-July
    records = []
    for hour in range(24):
        utc = dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)
        local = utc.astimezone(zone)
        rng = random.Random(f"{location}/{day.isoformat()}/{hour}")
        diurnal = -math.cos(2 * math.pi * (local.hour - 3) / 24)  # coolest ~03:00, warmest ~15:00 local
        temperature = mean_t + swing * season + 4.0 * diurnal + rng.gauss(0, 1.0)
        humidity = min(100.0, max(5.0, mean_h - 12.0 * diurnal + rng.gauss(0, 5.0)))
        raining = rng.random() < rain_chance
        precipitation = rng.expovariate(1 / 1.2) if raining else 0.0
        wind = abs(rng.gauss(12.0, 6.0))
        records.append(
            {
                "time": local.isoformat(timespec="seconds"),
                "temperature_c": _round(temperature),
                "humidity_pct": _round(humidity),
                "precipitation_mm": _round(precipitation),
                "wind_speed_kmh": _round(wind),
            }
        )
    return records


def history_body(location: str, day: dt.date) -> dict:
    return {
        "location": location,
        "date": day.isoformat(),
        "timezone": LOCATIONS[location][0],
        "hourly": observations(location, day),
    }


@dataclass
class Fault:
    kind: str  # "status" | "rate_limit" | "slow" | "malformed"
    status: int = 500
    retry_after: str | None = None
    seconds: float = 0.0
    location: str | None = None  # only requests for this location (None: any)
    date: str | None = None  # only requests for this day (None: any)

    def matches(self, location: str | None, date: str | None) -> bool:
        return (self.location is None or self.location == location) and (self.date is None or self.date == date)


@dataclass
class FaultPlan:
    """Faults for the next matching requests, consumed in the order they were queued."""

    _queue: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, status: int = 500, times: int = 1, **match) -> FaultPlan:
        return self._add([Fault("status", status=status, **match) for _ in range(times)])

    def rate_limit(self, retry_after: str | None = "1", times: int = 1, **match) -> FaultPlan:
        """429 with this Retry-After value (seconds or an HTTP date; None sends no header)."""
        return self._add([Fault("rate_limit", status=429, retry_after=retry_after, **match) for _ in range(times)])

    def slow(self, seconds: float, times: int = 1, **match) -> FaultPlan:
        """Wait this long before answering (normally), e.g. beyond the client's timeout."""
        return self._add([Fault("slow", seconds=seconds, **match) for _ in range(times)])

    def malformed(self, times: int = 1, **match) -> FaultPlan:
        """200 with a truncated, non-JSON body."""
        return self._add([Fault("malformed", status=200, **match) for _ in range(times)])

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def take(self, location: str | None, date: str | None) -> Fault | None:
        with self._lock:
            for i, fault in enumerate(self._queue):
                if fault.matches(location, date):
                    return self._queue.pop(i)
        return None

    def _add(self, faults: list[Fault]) -> FaultPlan:
        with self._lock:
            self._queue.extend(faults)
        return self


@dataclass(frozen=True)
class RequestLog:
    path: str
    location: str | None
    date: str | None
    status: int
    had_api_key: bool
    at: float  # time.monotonic()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # HTTP/1.0: one request per connection, so a stopped server really stops answering.
    protocol_version = "HTTP/1.0"

    def do_GET(self):  # noqa: N802 (http.server's naming)
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        location, date = query.get("location"), query.get("date")
        api = self.server.api
        sent_key = self.headers.get(API_KEY_HEADER)
        self._request = (url.path, location, date, sent_key is not None)
        self._answer(api, url.path, location, date, sent_key)

    def _answer(self, api: WeatherApiServer, path: str, location, date, sent_key) -> int:
        if path != HISTORY_PATH:
            return self._json(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint {path}"})
        if api.api_key is not None and sent_key != api.api_key:
            return self._json(HTTPStatus.UNAUTHORIZED, {"error": "missing or wrong API key"})
        fault = api.faults.take(location, date)
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.seconds)
            fault = None
        if fault is not None and fault.kind == "status":
            return self._json(fault.status, {"error": "injected failure"})
        if fault is not None and fault.kind == "rate_limit":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            return self._json(HTTPStatus.TOO_MANY_REQUESTS, {"error": "slow down"}, headers)
        if location not in LOCATIONS:
            return self._json(HTTPStatus.NOT_FOUND, {"error": f"unknown location {location!r}"})
        try:
            day = dt.date.fromisoformat(date or "")
        except ValueError:
            return self._json(HTTPStatus.BAD_REQUEST, {"error": "date must be YYYY-MM-DD"})
        if fault is not None and fault.kind == "malformed":
            text = json.dumps(history_body(location, day))
            return self._send(HTTPStatus.OK, text[: len(text) // 2].encode(), "application/json")
        return self._json(HTTPStatus.OK, history_body(location, day))

    def _json(self, status, body, headers=None) -> int:
        return self._send(status, json.dumps(body).encode(), "application/json", headers)

    def _send(self, status, payload: bytes, content_type: str, headers=None) -> int:
        # Logged before answering, so a client that got its answer always finds its request here.
        path, location, date, had_key = self._request
        self.server.api._log(RequestLog(path, location, date, int(status), had_key, time.monotonic()))
        try:
            self.send_response(int(status))
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. timed out on a slow answer)
        return int(status)

    def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
        if self.server.api.verbose:
            super().log_message(format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    api: WeatherApiServer


class WeatherApiServer:
    """The fake API on 127.0.0.1; `port=0` picks a free port. Use as a context manager."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1", api_key: str | None = None, verbose: bool = False):
        self.api_key, self.verbose = api_key, verbose
        self.faults = FaultPlan()
        self.requests: list[RequestLog] = []
        self._requests_lock = threading.Lock()
        self._httpd = _Server((host, port), _Handler)
        self._httpd.api = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self._httpd.server_address[0]}:{self.port}"

    def start(self) -> WeatherApiServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="weather-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> WeatherApiServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _log(self, entry: RequestLog) -> None:
        with self._requests_lock:
            self.requests.append(entry)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api-key", default=None, help="require this key in the X-API-Key header")
    args = parser.parse_args(argv)
    server = WeatherApiServer(port=args.port, host=args.host, api_key=args.api_key, verbose=True)
    print(
        f"fake weather API on {server.url}{HISTORY_PATH}?location=berlin&date=YYYY-MM-DD "
        f"(set ML_PLATFORM_WEATHER_API_URL={server.url})",
        flush=True,
    )
    try:
        server._httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._httpd.server_close()


if __name__ == "__main__":
    main()
