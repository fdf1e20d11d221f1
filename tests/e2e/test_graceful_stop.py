"""SIGTERM during a push: the server stops accepting, lets the request in progress finish (within
uvicorn's graceful bound, 10 s), and the upload session it acknowledged resumes on another
replica (a second `dockyard serve` on the same data) and completes there."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD
from tests.server import DockyardServer

pytestmark = pytest.mark.e2e
CHUNK = 64 * 1024


def test_sigterm_finishes_the_transfer_and_the_upload_resumes_elsewhere(tmp_path: Path) -> None:
    first = DockyardServer(tmp_path / "data", None, ADMIN_PASSWORD)
    first.start()
    second = DockyardServer(tmp_path / "data", None, ADMIN_PASSWORD)
    try:
        part1, part2 = os.urandom(16 * CHUNK), os.urandom(3 * CHUNK)
        digest = "sha256:" + hashlib.sha256(part1 + part2).hexdigest()
        with first.client() as admin:
            r = admin.post("/v2/admin/graceful/blobs/uploads/")
            assert r.status_code == 202, r.text
            location = r.headers["Location"]

        started = threading.Event()
        result: dict[str, httpx.Response | BaseException] = {}

        def body() -> Iterator[bytes]:
            for i in range(0, len(part1), CHUNK):
                yield part1[i:i + CHUNK]
                started.set()
                threading.Event().wait(0.1)  # pace the upload so that SIGTERM lands in the middle

        def patch() -> None:
            try:
                with first.client() as admin:
                    result["patch"] = admin.patch(location, content=body(),
                                                  headers={"Content-Type": "application/octet-stream"})
            except BaseException as exc:  # noqa: BLE001 — reported by the assertion below
                result["patch"] = exc

        sender = threading.Thread(target=patch)
        sender.start()
        assert started.wait(30)
        assert first.process is not None
        os.kill(first.process.pid, signal.SIGTERM)  # mid-transfer
        sender.join(60)
        response = result["patch"]
        assert isinstance(response, httpx.Response), response
        assert response.status_code == 202 and response.headers["Range"] == f"0-{len(part1) - 1}"
        # Stopped by itself within the bound (uvicorn re-raises SIGTERM once it has shut down).
        assert first.process.wait(30) in (0, -signal.SIGTERM)
        with pytest.raises(httpx.ConnectError):  # no longer accepting
            httpx.get(first.url + "/healthz", timeout=5)
        first.process = None

        # Another replica on the same database and blob store takes the session over.
        second.start()
        with second.client() as admin:
            status = admin.get(location)
            assert status.status_code == 204 and status.headers["Range"] == f"0-{len(part1) - 1}"
            rest = f"{len(part1)}-{len(part1) + len(part2) - 1}"
            r = admin.patch(location, content=part2,
                            headers={"Content-Range": rest, "Content-Type": "application/octet-stream"})
            assert r.status_code == 202, r.text
            r = admin.put(location, params={"digest": digest})
            assert r.status_code == 201, r.text
            assert admin.get(f"/v2/admin/graceful/blobs/{digest}").content == part1 + part2
    finally:
        first.stop()
        second.stop()
