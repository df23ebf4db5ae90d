"""The REST API source kind: one GET per location and day, records found at a JSON path.

The endpoint's base URL and its API key are deployment settings: the spec names the
environment variables that hold them (read at run time through Dagster's `EnvVar`), never the
values. Requests are `GET <base URL><path>?location=<id>&date=<YYYY-MM-DD>`; `date` is the UTC
observation day, the raw partition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ml_platform.raw.spec import SourceSpec

# A dotted path of object keys from the root: "$.hourly", "$.data.items".
RECORDS_PATH_PATTERN = re.compile(r"^\$(\.[A-Za-z_][A-Za-z0-9_]*)+$")
ENV_NAME_PATTERN = re.compile(r"^[A-Z_][A-Z0-9_]*$")


@dataclass(frozen=True, kw_only=True)
class ApiSourceSpec(SourceSpec):
    # Environment variable holding the base URL (scheme, host, optional prefix), e.g.
    # ML_PLATFORM_WEATHER_API_URL. The daily schedule only runs by default when it is set.
    base_url_env: str
    # Environment variable holding an API key, sent in the `api_key_header` header; None when the
    # API needs no key. The key is never put in URLs, logs, metadata or the warehouse.
    api_key_env: str | None = None
    api_key_header: str = "X-API-Key"
    path: str
    locations: tuple[str, ...]
    # JSON path of the list of records in a response body.
    records_path: str = "$.records"
    # Record field that receives the requested location id when the API leaves it out.
    location_field: str | None = "location"
    # Client-side limit on request starts, across retries and locations.
    requests_per_second: float = 5.0
    max_attempts: int = 5
    backoff_base_seconds: float = 1.0
    backoff_max_seconds: float = 30.0
    timeout_seconds: float = 10.0
    # Daily schedule (UTC) requesting yesterday's partition; None for no schedule.
    schedule_cron: str | None = "15 0 * * *"

    def __post_init__(self):
        super().__post_init__()
        if not self.is_partitioned:
            raise ValueError(f"source {self.name}: API sources are partitioned by day (set partition_column)")
        for env in (self.base_url_env, self.api_key_env):
            if env is not None and not ENV_NAME_PATTERN.match(env):
                raise ValueError(f"source {self.name}: {env!r} is not an environment variable name")
        if not self.path.startswith("/"):
            raise ValueError(f"source {self.name}: path must start with '/'")
        if not self.locations or len(set(self.locations)) != len(self.locations):
            raise ValueError(f"source {self.name}: locations must be non-empty and unique")
        if not RECORDS_PATH_PATTERN.match(self.records_path):
            raise ValueError(f"source {self.name}: records_path must look like '$.key' or '$.a.b'")
        if self.requests_per_second <= 0 or self.timeout_seconds <= 0:
            raise ValueError(f"source {self.name}: requests_per_second and timeout_seconds must be positive")
        if self.max_attempts < 1:
            raise ValueError(f"source {self.name}: max_attempts must be at least 1")
        if not 0 <= self.backoff_base_seconds <= self.backoff_max_seconds:
            raise ValueError(f"source {self.name}: need 0 <= backoff_base_seconds <= backoff_max_seconds")

    @property
    def responses_table(self) -> str:
        """Every API response of the raw window as received, so it can be re-processed."""
        return f"raw_{self.name}_responses"

    @property
    def resource_key(self) -> str:
        return f"{self.name}_api"

    def batch_name(self, location: str, day) -> str:
        """The raw `source_file` of one response: api:<name>/<location>/<YYYY-MM-DD>."""
        return f"api:{self.name}/{location}/{day}"
