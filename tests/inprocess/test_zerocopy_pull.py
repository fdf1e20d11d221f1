"""A blob pull from the filesystem on a server that offers `http.response.zerocopysend` (as
`dockyard serve` does on plain HTTP, api/zerocopy.py): the whole blob goes as one zero-copy
message, opened before the answer starts; HEAD, Range and a swept blob answer as before.

The server is emulated around the app: it advertises the extension and turns each zero-copy
message into the body message it stands for (reading the file at the given offset)."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import httpx
import pytest

from dockyard.api.settings import Settings
from dockyard.api.zerocopy import EXTENSION
from dockyard.storage import blob_key
from tests.inprocess.conftest import ADMIN_PASSWORD, BASE_URL, Dockyard, inprocess_settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(tmp_path) -> Settings:
    return inprocess_settings(storage=f"file://{tmp_path}/blobs")


class Emulated:
    """An ASGI server's side of the extension, around `app`; records each message type sent."""

    def __init__(self, app: Any) -> None:
        self.app, self.sent = app, []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = {**scope, "extensions": {**(scope.get("extensions") or {}), EXTENSION: {}}}

        async def server_send(message: dict[str, Any]) -> None:
            self.sent.append(message["type"])
            if message["type"] == EXTENSION:
                data = os.pread(message["file"].fileno(), message["count"], message["offset"])
                assert len(data) == message["count"]
                message = {"type": "http.response.body", "body": data, "more_body": message.get("more_body", False)}
            await send(message)

        await self.app(scope, receive, server_send)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def _pushed(client: httpx.AsyncClient, data: bytes) -> str:
    r = await client.post("/v2/admin/zc/blobs/uploads/", params={"digest": _digest(data)}, content=data)
    assert r.status_code == 201, r.text
    return _digest(data)


@pytest.fixture
def server(dockyard: Dockyard) -> Emulated:
    return Emulated(dockyard.app)


@pytest.fixture
def zc_client(dockyard: Dockyard, server: Emulated) -> httpx.AsyncClient:
    c = httpx.AsyncClient(transport=httpx.ASGITransport(app=server), base_url=BASE_URL, auth=("admin", ADMIN_PASSWORD))
    dockyard._clients.append(c)
    return c


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_a_whole_blob_goes_as_one_zero_copy_message(zc_client: httpx.AsyncClient, server: Emulated) -> None:
    data = os.urandom(3 << 20)
    digest = await _pushed(zc_client, data)
    server.sent.clear()
    fds = _open_fds()
    r = await zc_client.get(f"/v2/admin/zc/blobs/{digest}")
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-length"] == str(len(data)) and r.headers["docker-content-digest"] == digest
    assert server.sent == ["http.response.start", EXTENSION]
    assert _open_fds() == fds  # the blob's file is closed again


async def test_the_bytes_sent_are_metered(zc_client: httpx.AsyncClient) -> None:
    data = os.urandom(1 << 20)
    digest = await _pushed(zc_client, data)

    async def sent_bytes() -> float:
        text = (await zc_client.get("/metrics")).text
        return sum(float(line.split()[-1]) for line in text.splitlines()
                   if line.startswith("dockyard_http_sent_bytes_total"))

    before = await sent_bytes()
    assert (await zc_client.get(f"/v2/admin/zc/blobs/{digest}")).content == data
    assert await sent_bytes() - before >= len(data)


async def test_head_range_and_a_bad_range_keep_their_answers(zc_client: httpx.AsyncClient, server: Emulated) -> None:
    data = os.urandom(1 << 20)
    digest = await _pushed(zc_client, data)
    url = f"/v2/admin/zc/blobs/{digest}"
    server.sent.clear()
    r = await zc_client.head(url)
    assert r.status_code == 200 and r.headers["content-length"] == str(len(data)) and r.content == b""
    r = await zc_client.get(url, headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    assert r.headers["content-range"] == f"bytes 10-19/{len(data)}"
    r = await zc_client.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert r.status_code == 416
    assert EXTENSION not in server.sent
    r = await zc_client.get(url, headers={"Range": "bytes=500-0"})  # invalid: ignored, the whole blob
    assert r.status_code == 200 and r.content == data
    assert server.sent[-1] == EXTENSION


async def test_a_blob_swept_before_the_answer_is_unknown(dockyard: Dockyard, zc_client: httpx.AsyncClient,
                                                         server: Emulated) -> None:
    digest = await _pushed(zc_client, os.urandom(1 << 16))
    dockyard.services.store.delete(blob_key(digest))  # what the sweep does first
    server.sent.clear()
    r = await zc_client.get(f"/v2/admin/zc/blobs/{digest}")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
    assert EXTENSION not in server.sent
