"""Land a local landing folder's files on the S3 prefix, under the same paths
(`landing/<source>/<YYYY-MM-DD>/<file>`): how the demo data reaches S3, and a way to move an
existing landing folder there. An S3 PUT is atomic (an object is visible whole or not at all), so
no temporary names are needed; private names (`.`/`_`) are left out, as sources would not land them.
"""

from __future__ import annotations

from pathlib import Path

from ml_platform.storage.aws import AwsAccess, s3_client
from ml_platform.storage.location import LANDING, S3Location


def upload_landing(landing_root: Path, location: S3Location, access: AwsAccess) -> list[str]:
    """Upload every visible file under `landing_root`; returns their paths under it, in order."""
    client = s3_client(access)
    uploaded = []
    for path in sorted(p for p in landing_root.rglob("*") if p.is_file()):
        relative = path.relative_to(landing_root).as_posix()
        if any(part.startswith((".", "_")) for part in relative.split("/")):
            continue
        client.upload_file(str(path), location.bucket, location.key(LANDING, relative))
        uploaded.append(relative)
    return uploaded
