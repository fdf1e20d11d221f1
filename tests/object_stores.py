"""Real object-store servers for tests (testinfra.md sections 3-5), one process per session.

Each class starts its server on free ports, makes fresh buckets or containers, and gives the
`DOCKYARD_STORAGE` URL and the credentials (as environment variables) a Dockyard process or
`open_store` needs. A missing server program skips for a developer and fails in CI
(`tests.conftest.missing`).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server import free_port


def _wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url}: server did not answer within {timeout} s:\n{log.read_text(errors='replace')}")


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


class MotoS3:
    """moto's S3 server (no authentication: any key is accepted)."""

    ACCESS_KEY = SECRET_KEY = "testing"

    @staticmethod
    def available() -> str | None:
        """None when it can run here, else what is missing."""
        return None if importlib.util.find_spec("moto.server") else "moto[server] (pip, the `test` extra)"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, auth: bool = False) -> None:
        """`auth=True`: signatures are checked after the first calls (moto's auth mode): the
        readiness probe, then three that make a user, its policy and its access key."""
        log = self.workdir / "moto.log"
        env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "4"} if auth else None
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=open(log, "ab"), stderr=subprocess.STDOUT, env=env)  # noqa: SIM115 - owned by the process
        _wait_http(self.endpoint, self.process, log)

    def stop(self) -> None:
        _stop(self.process)

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": self.SECRET_KEY}

    def client(self):  # noqa: ANN201 - minio.Minio
        from minio import Minio

        return Minio(f"127.0.0.1:{self.port}", access_key=self.ACCESS_KEY, secret_key=self.SECRET_KEY,
                     secure=False, region="us-east-1")

    def new_bucket(self) -> str:
        bucket = "dockyard-" + uuid.uuid4().hex[:16]
        self.client().make_bucket(bucket)
        return bucket

    def empty_bucket(self, bucket: str) -> None:
        """Drop every object, and every multipart upload left open, so moto's memory stays small."""
        from minio.deleteobjects import DeleteObject

        client = self.client()
        names = [o.object_name for o in client.list_objects(bucket, recursive=True)]
        for _ in client.remove_objects(bucket, (DeleteObject(n) for n in names)):
            pass
        for upload in client._list_multipart_uploads(bucket).uploads:
            client._abort_multipart_upload(bucket, upload.object_name, upload.upload_id)

    def url(self, bucket: str, prefix: str = "", **params: str) -> str:
        query = "&".join([f"endpoint={self.endpoint}", "region=us-east-1"] + [f"{k}={v}" for k, v in params.items()])
        return f"s3://{bucket}{'/' + prefix if prefix else ''}?{query}"


def with_env(env: dict[str, str]):  # noqa: ANN201 - a context manager
    """Set environment variables for the duration of a `with` block."""
    from contextlib import contextmanager

    @contextmanager
    def manager():  # noqa: ANN202
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    return manager()


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    """One moto S3 server for the session; tests make their own buckets."""
    from tests.conftest import missing

    if reason := MotoS3.available():
        missing(reason)
    server = MotoS3(tmp_path_factory.mktemp("moto"))
    server.start()
    yield server
    server.stop()
