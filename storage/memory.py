"""An in-memory backend: the fake for unit tests. It passes the same contract suite."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from typing import BinaryIO

from dockyard.storage.base import BlobNotFound, BlobStore, Writer


class _MemoryWriter(Writer):
    def __init__(self, store: MemoryStore, key: str, append: bool) -> None:
        self._store, self._key, self._append = store, key, append
        self._buffer = bytearray(store._objects.get(key, b"") if append else b"")
        self._visible = append

    @property
    def size(self) -> int:
        return len(self._buffer)

    def write(self, data: bytes | memoryview) -> None:
        self._buffer += data
        if self._visible:
            with self._store._lock:
                self._store._objects[self._key] = bytes(self._buffer)

    def commit(self) -> None:
        with self._store._lock:
            self._store._objects[self._key] = bytes(self._buffer)
        self._visible = True

    def close(self) -> None:
        pass


class MemoryStore(BlobStore):
    def __init__(self) -> None:
        self._objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def _stat(self, key: str) -> int:
        try:
            return len(self._objects[key])
        except KeyError:
            raise BlobNotFound(key) from None

    def _open_read(self, key: str, offset: int) -> BinaryIO:
        try:
            f = io.BytesIO(self._objects[key])
        except KeyError:
            raise BlobNotFound(key) from None
        f.seek(offset)
        return f

    def _write_bytes(self, key: str, data: bytes) -> None:
        with self._lock:
            self._objects[key] = bytes(data)

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
