"""The S3 prefix the platform uses, from `ML_PLATFORM_STORAGE`, and the layout under it.

Under `s3://bucket/prefix/` the layout is the local one: `landing/<source>/<YYYY-MM-DD>/<file>`
for what sources land, and `curated/<table>/<partition column>=<YYYY-MM-DD>/data.parquet` for
the curated tables' export.
"""

from __future__ import annotations

from dataclasses import dataclass

from ml_platform import settings

LANDING = "landing"
CURATED = "curated"


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # without leading or trailing "/"; "" for the bucket's root

    def key(self, *parts: str) -> str:
        """The object key of a path under the prefix."""
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p.strip("/"))

    def url(self, *parts: str) -> str:
        return f"s3://{self.bucket}/{self.key(*parts)}"

    def relative(self, key: str) -> str:
        """A key's path under the prefix."""
        return key[len(self.prefix) + 1 :] if self.prefix else key


def parse(url: str) -> S3Location:
    """`s3://bucket/prefix` (the prefix may be empty or nested); anything else is refused."""
    if not url.startswith("s3://"):
        raise ValueError(f"ML_PLATFORM_STORAGE must be s3://bucket/prefix or unset (local folder), not {url!r}")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"ML_PLATFORM_STORAGE names no bucket: {url!r}")
    return S3Location(bucket, prefix.strip("/"))


def s3_location() -> S3Location | None:
    """The configured S3 prefix; None when storage is the local folder."""
    url = settings.storage_url()
    return parse(url) if url else None
