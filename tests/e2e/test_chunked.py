"""Chunked blob uploads over real HTTP with httpx: several PATCHes, a streamed PATCH without
Content-Length, and one upload whose PATCHes alternate between two server processes that share
the data directory and the database."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.clients import sha256
from tests.server import DockyardServer

pytestmark = pytest.mark.e2e

REPO = "admin/chunked"


def pieces(data: bytes, count: int) -> list[bytes]:
    step = -(-len(data) // count)
    return [data[i:i + step] for i in range(0, len(data), step)]


def start(http: httpx.Client, repository: str = REPO) -> str:
    r = http.post(f"/v2/{repository}/blobs/uploads/")
    assert r.status_code == 202, r.text
    assert r.headers["range"] == "0-0"
    return r.headers["location"]


def patch(http: httpx.Client, location: str, chunk: bytes, offset: int) -> str:
    r = http.patch(location, content=chunk, headers={
        "Content-Type": "application/octet-stream",
        "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
    })
    assert r.status_code == 202, r.text
    assert r.headers["range"] == f"0-{offset + len(chunk) - 1}"
    return r.headers["location"]


def assert_blob(http: httpx.Client, data: bytes, repository: str = REPO) -> None:
    digest = sha256(data)
    head = http.head(f"/v2/{repository}/blobs/{digest}")
    assert head.status_code == 200
    assert int(head.headers["content-length"]) == len(data)
    r = http.get(f"/v2/{repository}/blobs/{digest}")
    assert r.status_code == 200
    assert r.headers["docker-content-digest"] == digest
    assert r.content == data


def test_several_patches(shared_server) -> None:
    data = os.urandom(3 * 1024 * 1024 + 12345)
    with shared_server.client() as http:
        location = start(http)
        offset = 0
        for chunk in pieces(data, 5):
            location = patch(http, location, chunk, offset)
            offset += len(chunk)
        status = http.get(location)
        assert status.status_code == 204
        assert status.headers["range"] == f"0-{len(data) - 1}"

        r = http.put(location, params={"digest": sha256(data)})
        assert r.status_code == 201, r.text
        assert r.headers["docker-content-digest"] == sha256(data)
        assert_blob(http, data)
        assert http.get(location).status_code == 404  # the session is gone


def test_out_of_order_patch_is_refused_and_session_survives(shared_server) -> None:
    data = os.urandom(200_000)
    first, second = data[:120_000], data[120_000:]
    with shared_server.client() as http:
        location = patch(http, start(http), first, 0)
        skipped = http.patch(location, content=second, headers={"Content-Range": f"{len(first) + 10}-{len(data) + 9}"})
        assert skipped.status_code == 416
        assert http.get(location).headers["range"] == f"0-{len(first) - 1}"
        location = patch(http, location, second, len(first))
        assert http.put(location, params={"digest": sha256(data)}).status_code == 201
        assert_blob(http, data)


def test_streamed_patch_without_content_length(shared_server) -> None:
    data = os.urandom(2 * 1024 * 1024 + 777)
    tail = os.urandom(5000)
    sent: list[httpx.Request] = []

    def stream() -> Iterator[bytes]:
        for i in range(0, len(data), 50_000):  # odd-sized pieces, not aligned to anything
            yield data[i:i + 50_000]

    with shared_server.client() as http:
        http.event_hooks["request"].append(sent.append)
        location = start(http)
        r = http.patch(location, content=stream(), headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 202, r.text
        assert "content-length" not in sent[-1].headers
        assert sent[-1].headers["transfer-encoding"] == "chunked"
        assert r.headers["range"] == f"0-{len(data) - 1}"

        # The last piece rides on the PUT, also streamed.
        whole = data + tail
        r = http.put(r.headers["location"], params={"digest": sha256(whole)}, content=iter([tail[:1000], tail[1000:]]))
        assert r.status_code == 201, r.text
        assert_blob(http, whole)


def test_interrupted_patch_resumes_from_the_reported_size(shared_server) -> None:
    data = os.urandom(3 * 1024 * 1024 + 99)
    first = 700_000

    def breaks_off() -> Iterator[bytes]:
        for i in range(first, len(data) - 100_000, 100_000):
            yield data[i:i + 100_000]
        raise ConnectionAbortedError("client gives up mid-body")

    with shared_server.client() as http:
        location = patch(http, start(http), data[:first], 0)
        with pytest.raises(ConnectionAbortedError):
            http.patch(location, content=breaks_off())
        # The server takes in what the broken request had already put on the wire after the
        # client gave up, so wait until the session's size stops moving: a chunk sent from a size
        # read earlier would interleave with those bytes (and fail the digest check at the PUT).
        sizes: list[int] = []
        while len(sizes) < 3 or len(set(sizes[-3:])) > 1:
            status = http.get(location)
            assert status.status_code == 204
            sizes.append(int(status.headers["range"].split("-")[1]) + 1)
            assert len(sizes) < 100, sizes
            time.sleep(0.1)
        size = sizes[-1]
        assert first <= size < len(data)  # the first PATCH, and maybe part of the broken one
        r = http.patch(location, content=data[size:], headers={"Content-Range": f"{size}-{len(data) - 1}"})
        assert r.status_code == 202, r.text
        r = http.put(r.headers["location"], params={"digest": sha256(data)})
        assert r.status_code == 201, r.text
        assert_blob(http, data)


def test_wrong_digest_commits_nothing(shared_server) -> None:
    data = os.urandom(300_000)
    claimed = "sha256:" + hashlib.sha256(b"something else").hexdigest()
    with shared_server.client() as http:
        location = patch(http, start(http), data, 0)
        r = http.put(location, params={"digest": claimed})
        assert r.status_code == 400
        assert r.json()["errors"][0]["code"] == "DIGEST_INVALID"
        assert http.head(f"/v2/{REPO}/blobs/{claimed}").status_code == 404
        assert http.head(f"/v2/{REPO}/blobs/{sha256(data)}").status_code == 404


@pytest.fixture
def two_servers(shared_server: DockyardServer) -> Iterator[tuple[DockyardServer, DockyardServer]]:
    """The module's server and a second process on the same data directory and database."""
    server = shared_server
    second = DockyardServer(server.data_dir, server.database_url, server.admin_password)
    second.start()
    try:
        yield server, second
    finally:
        second.stop()


def test_patches_alternate_between_two_processes(two_servers) -> None:
    clients = [srv.client() for srv in two_servers]
    try:
        for finish_on in (0, 1):  # the PUT goes to either process
            data = os.urandom(2 * 1024 * 1024 + 4321 * finish_on)
            location = start(clients[finish_on])
            offset = 0
            for i, chunk in enumerate(pieces(data, 6)):
                http = clients[i % 2]
                if i == 3:  # one streamed chunk without Content-Length, on the second process
                    r = http.patch(location, content=iter(pieces(chunk, 3)))
                    assert r.status_code == 202, r.text
                    location = r.headers["location"]
                else:
                    location = patch(http, location, chunk, offset)
                offset += len(chunk)
            # Each process sees the session's whole size, whichever wrote last.
            for http in clients:
                assert http.get(location).headers["range"] == f"0-{len(data) - 1}"

            r = clients[finish_on].put(location, params={"digest": sha256(data)})
            assert r.status_code == 201, r.text
            assert r.headers["docker-content-digest"] == sha256(data)
            for http in clients:
                assert_blob(http, data)
                assert http.get(location).status_code == 404
    finally:
        for http in clients:
            http.close()
