"""Settings > Storage: choose the blob store at run time, after proving it works.

A new setting is recorded only after a probe object was written to the store, read back
byte for byte and deleted; otherwise `InvalidRequest` says why and nothing is recorded, so
the old store stays in force. Credentials go to the secret store under a fresh reference that
the event names (the log never holds them); every process's `SwitchableStore` picks the new
setting up by its version (`storage/switchable.py`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import orjson

from dockyard.commands.registry import Registry
from dockyard.domain.errors import InvalidRequest
from dockyard.domain.storage_settings import StorageSettings, check_storage_url
from dockyard.storage import BlobStore, StorageError

Opener = Callable[[str, Mapping[str, str]], BlobStore]


class Secrets(Protocol):
    def get(self, secret_id: str) -> str | None: ...

    def put(self, secret_id: str, value: str) -> None: ...


def probe(store: BlobStore) -> None:
    """Write, read back and delete one object; `StorageError` saying which step failed."""
    key, data = f"_probe/{uuid.uuid4().hex}", os.urandom(1024)
    store.write_bytes(key, data)
    if store.read_bytes(key) != data:
        raise StorageError("the probe object read back differs from what was written")
    store.delete(key)
    if store.exists(key):
        raise StorageError("the probe object is still there after its delete")


class StorageSetting:
    def __init__(self, registry: Registry, secrets: Secrets, opener: Opener) -> None:
        self.registry, self.secrets, self.opener = registry, secrets, opener
        # Called after a change is recorded: this process's store switches at once.
        self.listeners: list[Callable[[], object]] = []

    def _load(self) -> StorageSettings | None:
        return self.registry.load(StorageSettings, StorageSettings.create_id())

    def version(self) -> int:
        """The setting's version: 0 while none was chosen at run time."""
        settings = self._load()
        return settings.version if settings is not None and settings.url else 0

    def current(self) -> dict[str, Any]:
        """`url` ('' for none) and the names (never the values) of its credentials."""
        settings = self._load()
        if settings is None or not settings.url:
            return {"url": "", "credentials": []}
        return {"url": settings.url, "credentials": sorted(self._credentials(settings.credentials_ref))}

    def _credentials(self, ref: str) -> dict[str, str]:
        stored = self.secrets.get(ref) if ref else None
        return dict(orjson.loads(stored)) if stored else {}

    def open_current(self) -> BlobStore:
        """The store the setting names (`StorageError` if it cannot be opened here)."""
        settings = self._load()
        if settings is None or not settings.url:
            raise StorageError("no storage setting was chosen at run time")
        return self.opener(settings.url, {**os.environ, **self._credentials(settings.credentials_ref)})

    def change(self, url: str, credentials: Mapping[str, str]) -> dict[str, Any]:
        """Probe the store `url` names with `credentials` (over the process environment), then
        record it; `InvalidRequest` with the reason if the probe fails."""
        url = check_storage_url(url)
        try:
            probe(self.opener(url, {**os.environ, **credentials}))
        except OSError as exc:  # the filesystem's own errors (a folder it cannot make, a file in the way)
            where = f": {exc.filename}" if exc.filename else ""
            raise InvalidRequest(f"the storage setting was not changed: {exc.strerror or exc}{where}",
                                 {"url": url}) from None
        except StorageError as exc:
            raise InvalidRequest(f"the storage setting was not changed: {exc}", {"url": url}) from None
        ref = ""
        if credentials:
            ref = f"storage-credentials:{uuid.uuid4().hex}"
            self.secrets.put(ref, orjson.dumps(dict(credentials)).decode())

        def command() -> None:
            settings = self._load() or StorageSettings()
            settings.change(url, ref)
            self.registry.save(settings)

        self.registry.retrying(command)
        for listener in self.listeners:
            listener()
        return self.current()
