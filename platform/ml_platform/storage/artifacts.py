"""Files the platform makes besides its tables (fitted models), kept in the storage: under the data
folder by default, under `s3://bucket/prefix/` with `ML_PLATFORM_STORAGE`. A run on a worker whose
disk goes with it (an ECS task) leaves them where the next run, the UI's metadata and the user
find them.

A file is written whole or not at all, where readers find it: locally a temporary name in the same
folder renamed over the old file; on S3 one PUT (an object is visible whole or not at all).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ml_platform import settings
from ml_platform.storage.aws import aws_access, s3_client
from ml_platform.storage.location import s3_location

MODELS = "models"


def save(path: str, data: bytes) -> str:
    """Write `data` at `path` (e.g. `models/churn.pkl`) under the storage; returns where it is (a
    local path, or an `s3://` URL)."""
    location = s3_location()
    if location is not None:
        s3_client(aws_access()).put_object(Bucket=location.bucket, Key=location.key(path), Body=data)
        return location.url(path)
    target = settings.data_dir() / path
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return str(target)


def load(path: str) -> bytes:
    """The file at `path` under the storage (FileNotFoundError when there is none)."""
    location = s3_location()
    if location is None:
        return (settings.data_dir() / path).read_bytes()
    client = s3_client(aws_access())
    try:
        return client.get_object(Bucket=location.bucket, Key=location.key(path))["Body"].read()
    except client.exceptions.NoSuchKey as missing:
        raise FileNotFoundError(location.url(path)) from missing
