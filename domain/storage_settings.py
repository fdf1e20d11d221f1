"""The registry's storage setting (DTR's Settings > Storage): which blob store it uses.

The setting is a storage URL (`file:///…`, `s3://…`, `azure://…`, `swift://…`) and a reference
to credentials kept in the secret store, never in the log. Empty URL: none chosen at run time
(the registry uses the store it was started with, `--storage` / `DOCKYARD_STORAGE`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlparse
from uuid import UUID

from eventsourcing.domain import event

from dockyard.domain.aggregate import RegistryAggregate, name_id
from dockyard.domain.errors import InvalidRequest

SCHEMES = ("file", "s3", "azure", "swift")


def check_storage_url(url: str) -> str:
    """A storage URL of a supported scheme, without credentials in it (they are secrets: they
    go in `credentials`, which the log never holds)."""
    url = url.strip()
    parsed = urlparse(url)
    if parsed.scheme not in SCHEMES:
        raise InvalidRequest(f"the storage URL must start with one of {', '.join(s + '://' for s in SCHEMES)}",
                             {"url": url})
    if "@" in parsed.netloc or any(word in parsed.query.lower() for word in ("key", "secret", "password", "token")):
        raise InvalidRequest("put credentials in `credentials`, not in the storage URL (the URL is recorded)",
                             {"scheme": parsed.scheme})
    return url


class StorageSettings(RegistryAggregate):
    TOPIC = "dockyard.StorageSettings"

    if TYPE_CHECKING:  # the event classes `@event` makes at run time (fields: the method's)
        class Created(RegistryAggregate.Created):
            pass

        class Changed(RegistryAggregate.Event):
            url: str
            credentials_ref: str

    @staticmethod
    def create_id() -> UUID:
        return name_id("settings", "storage")

    @event("Created", topic="dockyard.StorageSettings.Created")
    def __init__(self) -> None:
        self.url = ""
        self.credentials_ref = ""

    @event("Changed", topic="dockyard.StorageSettings.Changed")
    def _changed(self, url: str, credentials_ref: str) -> None:
        self.url, self.credentials_ref = url, credentials_ref

    def change(self, url: str, credentials_ref: str) -> None:
        """Record a new storage setting (checked and probed by the command that calls this)."""
        self._changed(check_storage_url(url), credentials_ref)
