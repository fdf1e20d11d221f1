"""The in-memory fake passes the same contract as the real backends."""

from __future__ import annotations

import pytest

from dockyard.storage import open_store
from dockyard.storage.base import BlobStore
from dockyard.storage.memory import MemoryStore
from tests.storage.contract import BlobStoreContract


class TestMemoryStore(BlobStoreContract):
    @pytest.fixture
    def store(self) -> BlobStore:
        return MemoryStore()


def test_memory_url_opens_a_memory_store() -> None:
    # `memory://` selects the fake, a fresh empty store each time.
    first, second = open_store("memory://"), open_store("memory://")
    assert isinstance(first, MemoryStore)
    first.write_bytes("k", b"v")
    assert second.exists("k") is False
