"""A blob store whose backend can change while the registry runs (Settings > Storage).

Every process holds one `SwitchableStore`. At most every `interval` seconds, on use, it asks
`version()` for the current setting's version (a cheap read of the metadata database); when
that changed it calls `open_current()` and sends every later call to the store it returns, so
every replica follows a change within `interval` without a restart. If the new store cannot be
opened here, the old one keeps serving and the failure is logged (and tried again next time).

A switch moves no bytes: blobs stay where they were written (`dockyard storage migrate` copies
them), and an upload session begun on the old backend is unknown to the new one (the client
starts it again). Writers and readers already open keep the backend they were opened on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO

from dockyard.storage.base import BlobStore, StorageError, Writer

log = logging.getLogger("dockyard.storage")


class SwitchableStore(BlobStore):
    def __init__(self, initial: BlobStore, version: Callable[[], int], open_current: Callable[[], BlobStore],
                 *, interval: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._store, self._version, self._open = initial, version(), open_current
        self._read_version, self._interval, self._clock = version, interval, clock
        self._checked = clock()
        self._lock = threading.Lock()

    @property
    def current(self) -> BlobStore:
        """The backend calls go to now, after checking for a new setting if it is time to."""
        now = self._clock()
        if now - self._checked >= self._interval and self._lock.acquire(blocking=False):
            try:
                self._checked = now
                self._switch_if_changed()
            finally:
                self._lock.release()
        return self._store

    def refresh(self) -> BlobStore:
        """Check for a new setting now (the process that made the change calls this)."""
        with self._lock:
            self._checked = self._clock()
            self._switch_if_changed()
        return self._store

    def _switch_if_changed(self) -> None:
        try:
            version = self._read_version()
            if version == self._version:
                return
            store = self._open()
        except (StorageError, OSError) as exc:
            log.warning("storage setting changed but its store cannot be opened here; still serving "
                        "from the previous one: %s", exc)
            return
        self._store, self._version = store, version
        log.info("blob storage switched to the setting of version %d", version)

    def _stat(self, key: str) -> int:
        return self.current._stat(key)

    def _open_read(self, key: str, offset: int) -> BinaryIO:
        return self.current._open_read(key, offset)

    def _write_bytes(self, key: str, data: bytes) -> None:
        self.current._write_bytes(key, data)

    def _writer(self, key: str, append: bool) -> Writer:
        return self.current._writer(key, append)

    def _write_bytes_volatile(self, key: str, data: bytes) -> None:
        self.current._write_bytes_volatile(key, data)

    def _volatile_writer(self, key: str, append: bool) -> Writer:
        return self.current._volatile_writer(key, append)

    def _move(self, source: str, destination: str) -> None:
        self.current._move(source, destination)

    def _delete(self, key: str) -> None:
        self.current._delete(key)

    def _list(self, prefix: str) -> Iterator[str]:
        return self.current._list(prefix)

    def local_path(self, key: str) -> str | None:
        return self.current.local_path(key)

    def redirect_url(self, key: str) -> str | None:
        return self.current.redirect_url(key)

    def ping(self) -> None:
        self._store.ping()  # the store serving now: readiness must not hang on the setting's database
