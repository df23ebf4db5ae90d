"""AWS access through dagster-aws: the S3 client, and the credentials DuckDB signs requests with.

Credentials come, in this order, from an AWS Secrets Manager secret named by
`ML_PLATFORM_S3_CREDENTIALS_SECRET` (read with dagster-aws's `SecretsManagerResource`), or from
boto3's own chain: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, `AWS_PROFILE` and the shared
config files, or the machine's instance or task role. Nothing here is a secret in itself: only
the secret's name, the region, the profile name and an endpoint are configuration. The keys stay
in memory; they are never logged, put in metadata or written into SQL text (DuckDB gets them as
bound parameters, `ml_platform.warehouse.s3`).
"""

from __future__ import annotations

import functools
import json
import os
import time
from dataclasses import dataclass

import boto3
from dagster_aws.s3 import S3Resource
from dagster_aws.secretsmanager import SecretsManagerResource

from ml_platform import settings


@dataclass(frozen=True)
class Credentials:
    key_id: str
    secret: str
    session_token: str | None = None

    def __repr__(self) -> str:  # never print the keys, whatever logs the object
        return "Credentials(***)"


# How long resolved credentials are reused in one process.
CREDENTIALS_SECONDS = 300.0
_CREDENTIALS: dict[AwsAccess, tuple[float, Credentials]] = {}


@dataclass(frozen=True)
class AwsAccess:
    """How to reach the bucket: endpoint (None: AWS), region, profile, credentials secret."""

    endpoint_url: str | None
    region: str | None
    profile: str | None
    credentials_secret: str | None

    def credentials(self) -> Credentials:
        """The keys to sign with now. Every file a raw run reads on S3 asks for them, so they are
        kept for `CREDENTIALS_SECONDS` per process (one Secrets Manager call, not one per file);
        temporary credentials outlive that by far (an hour for a role's, 15 minutes at least)."""
        cached = _CREDENTIALS.get(self)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        found = self._resolve()
        _CREDENTIALS[self] = (time.monotonic() + CREDENTIALS_SECONDS, found)
        return found

    def _resolve(self) -> Credentials:
        if self.credentials_secret:
            return _from_secrets_manager(self)
        session = boto3.Session(profile_name=self.profile, region_name=self.region)
        found = session.get_credentials()
        if found is None:
            raise RuntimeError(
                "no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, run with an "
                "instance or task role, or name a Secrets Manager secret in ML_PLATFORM_S3_CREDENTIALS_SECRET"
            )
        frozen = found.get_frozen_credentials()
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

    def s3_resource(self) -> S3Resource:
        """dagster-aws's S3 resource for this access (built at run time, so the keys of a Secrets
        Manager secret never become resource configuration that the UI shows)."""
        keys = {}
        if self.credentials_secret:
            found = self.credentials()
            keys = dict(
                aws_access_key_id=found.key_id,
                aws_secret_access_key=found.secret,
                aws_session_token=found.session_token,
            )
        return S3Resource(endpoint_url=self.endpoint_url, region_name=self.region, profile_name=self.profile, **keys)


def _from_secrets_manager(access: AwsAccess) -> Credentials:
    client = SecretsManagerResource(
        endpoint_url=access.endpoint_url, region_name=access.region, profile_name=access.profile
    ).get_client()
    value = client.get_secret_value(SecretId=access.credentials_secret)["SecretString"]
    try:
        fields = json.loads(value)
        return Credentials(
            fields["aws_access_key_id"], fields["aws_secret_access_key"], fields.get("aws_session_token")
        )
    except (ValueError, KeyError, TypeError):
        # The message names the secret, never its content.
        raise RuntimeError(
            f"Secrets Manager secret {access.credentials_secret!r} must be JSON with aws_access_key_id and"
            " aws_secret_access_key"
        ) from None


def aws_access() -> AwsAccess:
    """The access the environment configures (see `ml_platform.settings`)."""
    return AwsAccess(
        settings.s3_endpoint_url(),
        settings.s3_region(),
        os.environ.get("AWS_PROFILE"),
        settings.s3_credentials_secret(),
    )


@functools.lru_cache(maxsize=8)
def s3_client(access: AwsAccess):
    """One boto3 S3 client per access and process (a client costs tens of milliseconds to make)."""
    return access.s3_resource().get_client()
