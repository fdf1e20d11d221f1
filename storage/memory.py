"""An in-memory backend: the fake for unit tests. It passes the same contract suite.

Objects are `bytearray`s so that appending costs the bytes appended, not the object so far;
readers get a copy taken under the lock, so a reader never sees a later write.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from typing import BinaryIO

from dockyard.storage.base import BlobNotFound, BlobStore, Writer


class _MemoryWriter(Writer):
    def __init__(self, store: MemoryStore, key: str, append: bool) -> None:
        self._store, self._key = store, key
        # A new object's bytes wait here until `commit`; an append writer writes through.
        self._pending: bytearray | None = None if append else bytearray()
        if append:
            with store._lock:  # like O_CREAT: an append writer starts the object
                self._size = len(store._objects.setdefault(key, bytearray()))
        else:
            self._size = 0

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes | memoryview) -> None:
        if self._pending is not None:
            self._pending += data
        else:
            with self._store._lock:
                self._store._objects.setdefault(self._key, bytearray()).extend(data)
        self._size += memoryview(data).nbytes

    def commit(self) -> None:
        if self._pending is not None:
            with self._store._lock:
                self._store._objects[self._key] = self._pending
            self._pending = None  # further writes append to the now-visible object

    def close(self) -> None:
        self._pending = None  # never committed: the bytes go


class MemoryStore(BlobStore):
    def __init__(self) -> None:
        self._objects: dict[str, bytearray] = {}
        self._lock = threading.Lock()

    def _stat(self, key: str) -> int:
        with self._lock:
            try:
                return len(self._objects[key])
            except KeyError:
                raise BlobNotFound(key) from None

    def _open_read(self, key: str, offset: int) -> BinaryIO:
        with self._lock:
            try:
                f = io.BytesIO(bytes(self._objects[key]))
            except KeyError:
                raise BlobNotFound(key) from None
        f.seek(offset)
        return f

    def _write_bytes(self, key: str, data: bytes) -> None:
        copy = bytearray(data)
        with self._lock:
            self._objects[key] = copy

    def _writer(self, key: str, append: bool) -> Writer:
        return _MemoryWriter(self, key, append)

    def _move(self, source: str, destination: str) -> None:
        with self._lock:
            try:
                self._objects[destination] = self._objects.pop(source)
            except KeyError:
                raise BlobNotFound(source) from None

    def _delete(self, key: str) -> None:
        with self._lock:
            self._objects.pop(key, None)
            for k in [k for k in self._objects if k.startswith(key + "/")]:
                del self._objects[k]

    def _list(self, prefix: str) -> Iterator[str]:
        with self._lock:
            keys = [k for k in self._objects if k.startswith(prefix + "/")]
        return iter(keys)
