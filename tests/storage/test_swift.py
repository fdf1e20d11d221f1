"""The Swift backend passes the contract against a real single-node Swift, and keeps its own
promises: large objects and appends are segments under one manifest, a bad URL is one clear error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dockyard.storage import open_store
from dockyard.storage.base import BlobStore
from dockyard.storage.swift import SwiftStore
from tests.object_stores import Swift, one_line_error, with_env
from tests.storage.contract import BlobStoreContract

MiB = 1024 * 1024


@pytest.fixture
def container(swift: Swift) -> Iterator[str]:
    name = swift.new_container()
    yield name
    swift.drop_container(name)


def swift_store(swift: Swift, container: str, prefix: str = "") -> SwiftStore:
    with with_env(swift.env):
        store = open_store(swift.url(container, prefix))
    assert isinstance(store, SwiftStore)
    return store


class TestSwiftStore(BlobStoreContract):
    @pytest.fixture
    def store(self, swift: Swift, container: str) -> BlobStore:
        return swift_store(swift, container, "registry/one")


def raw_names(swift: Swift, container: str) -> list[str]:
    return sorted(o["name"] for o in swift.connection().get_container(container, full_listing=True)[1])


def test_appends_are_segments_of_one_manifest(swift: Swift, container: str) -> None:
    store = swift_store(swift, container)
    # A small object, then three appends, one larger than a segment.
    store.write_bytes("_uploads/u/data", b"a" * 1000)
    for piece in (b"b" * (9 * MiB), b"c" * 10):
        with store.writer("_uploads/u/data", append=True) as w:
            w.write(piece)
            w.commit()
    whole = b"a" * 1000 + b"b" * (9 * MiB) + b"c" * 10

    # The key is a manifest of four segments (the first copied from the plain object on the
    # server); only the key is listed, and ranges are served across segments.
    headers = swift.connection().head_object(container, "_uploads/u/data", query_string="multipart-manifest=get")
    assert headers["x-static-large-object"].lower() == "true"
    assert len(raw_names(swift, container)) == 1 + 4
    assert list(store.list("_uploads")) == ["_uploads/u/data"]
    with store.open_read("_uploads/u/data", 998) as f:
        assert f.read(4) == b"aabb"

    # Moving copies the segments on the server; the source and its segments go.
    store.move("_uploads/u/data", "blobs/x")
    assert store.read_bytes("blobs/x") == whole
    assert all(n.startswith("blobs/x") for n in raw_names(swift, container))
    store.delete("blobs/x")
    assert raw_names(swift, container) == []


def test_abandoned_large_writer_leaves_nothing(swift: Swift, container: str) -> None:
    store = swift_store(swift, container)
    with store.writer("gone") as w:
        w.write(b"x" * (9 * MiB))
    assert raw_names(swift, container) == []



def test_bad_urls_are_one_line_errors(swift: Swift, container: str) -> None:
    assert "swift://" in one_line_error("nfs://x", swift.env)
    assert "no container" in one_line_error("swift:///x", swift.env)
    assert "no Swift credentials" in one_line_error(swift.url(container), {"ST_AUTH": "", "OS_AUTH_URL": ""})
    assert "'absent' does not exist" in one_line_error(swift.url("absent"), swift.env)
    assert "refused the credentials (401)" in one_line_error(swift.url(container), {**swift.env, "ST_KEY": "wrong"})
    from tests.server import free_port

    unreachable = {**swift.env, "ST_AUTH": f"http://127.0.0.1:{free_port()}/auth/v1.0"}
    assert "cannot reach Swift" in one_line_error(swift.url(container), unreachable)


def test_keystone_variables_say_what_they_need() -> None:
    # OS_* (Keystone v2/v3) goes through python-keystoneclient, which Dockyard does not install:
    # without it the error says so, in one line (swiftclient's own message starts with a newline,
    # which left "Swift at URL:" and nothing after it); with it, an absent Keystone is unreachable.
    import importlib.util

    from tests.server import free_port

    auth = f"http://127.0.0.1:{free_port()}/v3"
    env = {"ST_AUTH": "", "OS_AUTH_URL": auth, "OS_USERNAME": "u", "OS_PASSWORD": "p", "OS_PROJECT_NAME": "x"}
    message = one_line_error("swift://registry", env)
    if importlib.util.find_spec("keystoneclient") is None:
        assert "python-keystoneclient" in message and "ST_AUTH" in message
    else:
        assert f"cannot reach Swift at {auth}" in message



def test_large_objects_go_up_and_come_back_in_constant_memory(swift: Swift, container: str) -> None:
    # The peak of Python allocations while writing (in segments as they fill) and reading back
    # (in pieces) is the same for 16 and 64 MiB, and smaller than the larger object.
    import tracemalloc

    store = swift_store(swift, container)

    def peaks(mib: int) -> tuple[int, int]:
        tracemalloc.start()
        with store.writer(f"big/{mib}") as w:
            for _ in range(mib):
                w.write(b"x" * MiB)
            assert not store.exists(f"big/{mib}")  # nothing visible before the commit
            w.commit()
        _, written = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        tracemalloc.start()
        total = 0
        with store.open_read(f"big/{mib}") as r:
            while data := r.read(MiB):
                total += len(data)
        _, read = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert total == mib * MiB
        return written, read

    small, large = peaks(16), peaks(64)
    for at_16, at_64 in zip(small, large, strict=True):
        assert at_64 <= at_16 + 2 * MiB and at_64 < 64 * MiB, (small, large)


def test_redirect_gives_a_temp_url(swift: Swift, container: str) -> None:
    import httpx

    # Without `redirect=true` blobs stream through the registry.
    assert swift_store(swift, container).redirect_url("blobs/k") is None

    # With it, the container needs a TempURL key (Dockyard signs with it, never sets it): without
    # one, a one-line error says how to set it.
    url = swift.url(container, "pre", redirect="true")
    message = one_line_error(url, swift.env)
    assert "Temp-URL-Key" in message and container in message
    swift.connection().post_container(container, {"X-Container-Meta-Temp-URL-Key": "k3y"})

    # A plain object and a large one (an SLO manifest), fetched from Swift directly.
    with with_env(swift.env):
        store = open_store(url)
    store.write_bytes("blobs/small", b"direct bytes")
    store.write_bytes("blobs/large", b"y" * (9 * MiB))
    for key, data in (("blobs/small", b"direct bytes"), ("blobs/large", b"y" * (9 * MiB))):
        signed = store.redirect_url(key)
        assert signed is not None and "temp_url_sig=" in signed and "k3y" not in signed
        assert httpx.get(signed).content == data
    # A signature covers one object: another name with it is refused.
    other = store.redirect_url("blobs/small").replace("blobs/small", "blobs/large")  # type: ignore[union-attr]
    assert httpx.get(other).status_code == 401
