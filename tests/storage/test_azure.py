"""The Azure backend passes the contract against a real Azurite, and keeps its own promises:
objects are block lists (appends add blocks, nothing is re-sent), a bad URL is one clear error."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from dockyard.storage import open_store
from dockyard.storage.azure import AzureStore
from dockyard.storage.base import BlobStore
from tests.object_stores import AZURITE_KEY, Azurite, one_line_error, with_env
from tests.server import free_port
from tests.storage.contract import BlobStoreContract

MiB = 1024 * 1024


@pytest.fixture
def container(azurite: Azurite) -> Iterator[str]:
    name = azurite.new_container()
    yield name
    azurite.drop_container(name)


def azure_store(azurite: Azurite, container: str, prefix: str = "", **params: str) -> AzureStore:
    with with_env(azurite.env):
        store = open_store(azurite.url(container, prefix, **params))
    assert isinstance(store, AzureStore)
    return store


class TestAzureStore(BlobStoreContract):
    @pytest.fixture
    def store(self, azurite: Azurite, container: str) -> BlobStore:
        return azure_store(azurite, container, "registry/one")


def test_appends_add_blocks(azurite: Azurite, container: str) -> None:
    store = azure_store(azurite, container)
    # A session receives three requests; the middle one is larger than a block.
    with store.writer("_uploads/u/data", append=True) as w:
        w.write(b"a" * 1000)
        w.commit()
    with store.writer("_uploads/u/data", append=True) as w:
        w.write(b"b" * (9 * MiB))
        w.commit()
    with store.writer("_uploads/u/data", append=True) as w:
        w.write(b"c" * 10)
        w.commit()

    # The blob is the blocks of every request, in order: nothing was uploaded twice.
    blocks, uncommitted = azurite.service().get_blob_client(container, "_uploads/u/data").get_block_list("all")
    assert [b.size for b in blocks] == [1000, 8 * MiB, MiB, 10] and uncommitted == []
    store.move("_uploads/u/data", "blobs/x")
    assert store.read_bytes("blobs/x") == b"a" * 1000 + b"b" * (9 * MiB) + b"c" * 10


def test_redirect_gives_a_sas_url(azurite: Azurite, container: str) -> None:
    assert azure_store(azurite, container).redirect_url("blobs/k") is None
    store = azure_store(azurite, container, "pre", redirect="true")
    store.write_bytes("blobs/k", b"direct bytes")
    url = store.redirect_url("blobs/k")
    assert url is not None and "sig=" in url
    assert httpx.get(url).content == b"direct bytes"



def test_bad_urls_are_one_line_errors(azurite: Azurite, container: str) -> None:
    assert "azure://" in one_line_error("gs://bucket", azurite.env)
    assert "no container" in one_line_error("azure:///x", azurite.env)
    assert "AZURE_STORAGE_CONNECTION_STRING" in one_line_error(azurite.url(container), {"AZURE_STORAGE_CONNECTION_STRING": ""})
    assert "'nothing-here' does not exist" in one_line_error(azurite.url("nothing-here"), azurite.env)
    wrong_key = AZURITE_KEY[:-8] + "AAAAAA=="
    message = one_line_error(azurite.url(container), {"AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string(wrong_key)})
    assert f"refused access to container {container!r}" in message
    port = free_port()
    unreachable = azurite.connection_string().replace(str(azurite.port), str(port))
    assert "cannot reach Azure endpoint" in one_line_error(azurite.url(container), {"AZURE_STORAGE_CONNECTION_STRING": unreachable})



def test_large_objects_go_up_and_come_back_in_constant_memory(azurite: Azurite, container: str) -> None:
    # The peak of Python allocations while writing (in blocks as they fill) and reading back
    # (in pieces) is the same for 16 and 64 MiB, and smaller than the larger object.
    import tracemalloc

    store = azure_store(azurite, container)

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
