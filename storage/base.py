"""The blob-store contract every backend implements, and its errors.

Modelled on Distribution's `storagedriver.StorageDriver`, cut to what a registry needs. Keys
are relative, slash-separated paths of `[A-Za-z0-9._-]` segments; every backend method may be
called from any thread, and is blocking (the API runs it off the event loop).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import BinaryIO

_KEY = re.compile(r"[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*")  # fullmatch: `$` would allow a final "\n"


class StorageError(Exception):
    """A backend failed; the message says which key and why."""


class BlobNotFound(StorageError):
    """No object is stored under the key."""


class OutOfSpace(StorageError):
    """The backend has no room left for the write (a full disk or quota)."""


class InvalidKey(StorageError):
    """The key is not a valid storage path."""


class InvalidOffset(StorageError):
    """A read was asked to start at a negative offset."""


class StorageConfigError(StorageError, ValueError):
    """A storage URL cannot be used: its message is one line naming what is wrong (unknown
    scheme, missing bucket or container, refused credentials, unreachable endpoint) and what
    is supported. Raised by `open_store`, so a registry refuses to start on it."""


class Writer(ABC):
    """An append-only writer for one key.

    Bytes written are visible to `BlobStore.stat`/`open_read` only after `commit()` for new
    keys opened with `append=False`; for `append=True` writers (upload sessions) `commit()`
    makes everything written so far durable, and `size` counts all bytes in the object.
    """

    @property
    @abstractmethod
    def size(self) -> int:
        """Bytes in the object so far, including what this writer appended."""

    @abstractmethod
    def write(self, data: bytes | memoryview) -> None:
        """Append `data`."""

    @abstractmethod
    def commit(self) -> None:
        """Make every byte written durable (fsync / complete). The writer stays usable."""

    @abstractmethod
    def close(self) -> None:
        """Release resources; uncommitted bytes of an append writer may or may not survive."""

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BlobStore(ABC):
    """The storage contract. Subclasses implement the `_` methods; keys are checked here once."""

    @staticmethod
    def check_key(key: str) -> str:
        if not _KEY.fullmatch(key) or any(part in (".", "..") for part in key.split("/")):
            raise InvalidKey(f"invalid storage key: {key!r}")
        return key

    def stat(self, key: str) -> int:
        """The size in bytes of the object at `key`; `BlobNotFound` if there is none."""
        return self._stat(self.check_key(key))

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except BlobNotFound:
            return False
        return True

    def open_read(self, key: str, offset: int = 0) -> BinaryIO:
        """A binary file-like object positioned at `offset`; `BlobNotFound` if absent.

        An offset at or past the end gives a reader of no bytes; a negative one `InvalidOffset`.
        """
        self.check_key(key)
        if offset < 0:
            raise InvalidOffset(f"negative offset {offset} for {key!r}")
        return self._open_read(key, offset)

    def read_bytes(self, key: str) -> bytes:
        with self.open_read(key) as f:
            return f.read()

    def write_bytes(self, key: str, data: bytes, *, durable: bool = True) -> None:
        """Store `data` at `key` atomically: readers see the old object or the whole new one.

        `durable=False` keeps that for readers in every process and across a process crash, but
        lets an OS crash or power loss lose the object (no fsync where the backend has one): for
        state whose loss costs a client a retry, never for anything acknowledged as stored.
        """
        key = self.check_key(key)
        if durable:
            self._write_bytes(key, data)
        else:
            self._write_bytes_volatile(key, data)

    def writer(self, key: str, *, append: bool = False, durable: bool = True) -> Writer:
        """A writer for `key`: `append=True` continues an existing object (or starts one).

        `durable=False` as for `write_bytes`: creating the object (and the path to it) and its
        `commit` do not wait for the disk; an OS crash may lose it.
        """
        key = self.check_key(key)
        return self._writer(key, append) if durable else self._volatile_writer(key, append)

    def move(self, source: str, destination: str) -> None:
        """Atomically move `source` to `destination`, replacing it. `BlobNotFound` if no source."""
        self._move(self.check_key(source), self.check_key(destination))

    def delete(self, key: str) -> None:
        """Delete the object at `key`, or every object under the prefix `key/`. Idempotent."""
        self._delete(self.check_key(key))

    def list(self, prefix: str) -> Iterator[str]:
        """Every key under `prefix/`, recursively, in no particular order."""
        return self._list(self.check_key(prefix))

    def local_path(self, key: str) -> str | None:
        """A filesystem path to read the object from directly, when the backend has one."""
        return None

    def ping(self) -> None:
        """Raise `StorageError` if the backend cannot serve requests now (the readiness check)."""
        self.exists("_readiness")

    def redirect_url(self, key: str) -> str | None:
        """A URL clients may fetch the object from directly (presigned), or None."""
        return None

    def _write_bytes_volatile(self, key: str, data: bytes) -> None:
        """`write_bytes(durable=False)`; a backend without a cheaper form writes durably."""
        self._write_bytes(key, data)

    def _volatile_writer(self, key: str, append: bool) -> Writer:
        """`writer(durable=False)`; a backend without a cheaper form writes durably."""
        return self._writer(key, append)

    @abstractmethod
    def _stat(self, key: str) -> int: ...

    @abstractmethod
    def _open_read(self, key: str, offset: int) -> BinaryIO: ...

    @abstractmethod
    def _write_bytes(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def _writer(self, key: str, append: bool) -> Writer: ...

    @abstractmethod
    def _move(self, source: str, destination: str) -> None: ...

    @abstractmethod
    def _delete(self, key: str) -> None: ...

    @abstractmethod
    def _list(self, prefix: str) -> Iterator[str]: ...
