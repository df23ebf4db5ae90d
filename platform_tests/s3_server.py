"""A local S3-compatible server for the tests: moto's server, in its own process on 127.0.0.1 at a
free port, spoken to over real HTTP by boto3 (through dagster-aws) and by DuckDB's httpfs.

It keeps objects in memory; `reset()` empties it between tests. It also serves Secrets Manager on
the same endpoint. It accepts any credentials, so the tests' keys are made-up values.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import requests

from postgres_server import _free_port

REGION = "eu-central-1"
# Made-up keys: the event-log scan looks for exactly these strings.
ACCESS_KEY_ID = "AKIALOCALTESTKEY0001"
SECRET_ACCESS_KEY = "local-test-secret-key-never-logged-0001"


@dataclass
class LocalS3:
    port: int
    process: subprocess.Popen

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, service: str = "s3"):
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )

    def reset(self) -> None:
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()

    def env(self, storage: str) -> dict[str, str]:
        """The variables a deployment on this server sets: storage, endpoint, region, keys."""
        return {
            "ML_PLATFORM_STORAGE": storage,
            "ML_PLATFORM_S3_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        }


def _wait_for(port: int, process: subprocess.Popen, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the local S3 server exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError("the local S3 server did not start in time")


@contextlib.contextmanager
def local_s3() -> Iterator[LocalS3]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        _wait_for(port, process)
        yield LocalS3(port, process)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
