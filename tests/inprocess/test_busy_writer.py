"""The event store's writer busy past its wait (SQLite's single writer under many concurrent
pushes: the library's ConnectionUnavailableError) is a 503 the client retries, not a 500."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from eventsourcing.persistence import ConnectionUnavailableError

from tests.inprocess.conftest import Dockyard, image_parts

pytestmark = pytest.mark.anyio


async def test_a_busy_writer_is_a_retryable_503(dockyard: Dockyard, client: httpx.AsyncClient,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    config, _, _ = image_parts("busy")
    digest = "sha256:" + hashlib.sha256(config).hexdigest()

    def busy(*args: object, **kwargs: object) -> None:
        raise ConnectionUnavailableError("timed out waiting for the writer")

    monkeypatch.setattr(dockyard.services.registry, "save", busy)
    answer = await client.post("/v2/admin/busy/blobs/uploads/", params={"digest": digest}, content=config)
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
    assert answer.json()["errors"][0]["code"] == "UNAVAILABLE"
    answer = await client.post("/api/v0/accounts", json={"type": "organization", "name": "busyorg"})
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
    assert answer.headers["content-type"] == "application/problem+json"
