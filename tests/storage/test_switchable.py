"""A `SwitchableStore` follows the storage setting: within its interval after the setting's
version changes, every call goes to the new store; a store that cannot be opened is skipped."""

from __future__ import annotations

from dockyard.storage.base import StorageError
from dockyard.storage.memory import MemoryStore
from dockyard.storage.switchable import SwitchableStore
from tests.clock import Clock


def test_follows_the_setting_within_the_interval() -> None:
    clock = Clock()
    old, new, newer = MemoryStore(), MemoryStore(), MemoryStore()
    setting = {"version": 1, "store": new}
    opened: list[int] = []

    def open_current() -> MemoryStore:
        opened.append(setting["version"])  # type: ignore[arg-type]
        if setting["store"] is None:
            raise StorageError("endpoint unreachable")
        return setting["store"]  # type: ignore[return-value]

    store = SwitchableStore(old, lambda: setting["version"], open_current, interval=5, clock=clock)
    store.write_bytes("k", b"old")

    # Another replica records version 2: this process keeps the old store until its interval is up.
    setting["version"] = 2
    clock.advance(4)
    assert store.read_bytes("k") == b"old" and opened == []
    clock.advance(1)
    store.write_bytes("k", b"new")
    assert opened == [2] and new.read_bytes("k") == b"new" and old.read_bytes("k") == b"old"

    # No change: no reopening, however often it checks.
    clock.advance(60)
    store.exists("k")
    assert opened == [2]

    # A setting whose store cannot be opened here: the current one keeps serving; tried again later.
    setting.update(version=3, store=None)
    clock.advance(5)
    assert store.read_bytes("k") == b"new" and opened == [2, 3]
    setting["store"] = newer
    assert store.refresh() is newer and opened == [2, 3, 3]
