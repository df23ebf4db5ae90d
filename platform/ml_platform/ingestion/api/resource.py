"""Where a REST API source's data comes from: the Dagster resource holding its base URL and key.

The base URL and API key reach the run through a resource built from `dg.EnvVar`, so their
values live only in the environment: never in code, metadata or the run's config.
"""

import os

import dagster as dg
from pydantic import Field

from ml_platform.ingestion.api.client import ApiClient
from ml_platform.ingestion.api.spec import ApiSourceSpec


class ApiSourceResource(dg.ConfigurableResource):
    """Where an API source's data comes from. Build it with `dg.EnvVar`s: values stay in the environment."""

    base_url: str = Field(description="Base URL of the API (from the source's base_url_env).")
    api_key: str | None = Field(default=None, description="API key, sent as a header (from api_key_env).")

    def client(self, spec: ApiSourceSpec, **overrides) -> ApiClient:
        options = dict(
            api_key=self.api_key,
            api_key_header=spec.api_key_header,
            requests_per_second=spec.requests_per_second,
            max_attempts=spec.max_attempts,
            backoff_base_seconds=spec.backoff_base_seconds,
            backoff_max_seconds=spec.backoff_max_seconds,
            timeout_seconds=spec.timeout_seconds,
        )
        return ApiClient(self.base_url, **{**options, **overrides})


def api_resource(spec: ApiSourceSpec) -> ApiSourceResource:
    # The key is optional at load time: a deployment that sets the variable sends it; without it
    # requests go without a key (an API that needs one answers 401, which fails the run at once).
    with_key = spec.api_key_env is not None and os.environ.get(spec.api_key_env) is not None
    return ApiSourceResource(
        base_url=dg.EnvVar(spec.base_url_env),
        api_key=dg.EnvVar(spec.api_key_env) if with_key else None,
    )
