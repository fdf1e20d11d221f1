"""A blob's membership in a repository: what makes a layer pullable from that repository."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.domain import event

from dockyard.domain.aggregate import RegistryAggregate, name_id, opened_by


@opened_by("Linked")
class BlobLink(RegistryAggregate):
    """One aggregate per (repository, digest). A new one is `BlobLink.unborn(repository=…,
    digest=…)`, then `link`: its log begins with `Linked` at version 1. Logs written before that
    begin with a bare `Created` (what calling `BlobLink(…)` still records) and still load."""

    TOPIC = "dockyard.BlobLink"

    if TYPE_CHECKING:  # the event classes `@event` makes at run time (fields: the method's)
        class Created(RegistryAggregate.Created):  # only in logs written before `Linked` opened them
            repository: str
            digest: str

        class Linked(RegistryAggregate.Event):
            repository: str
            digest: str
            size: int
            source: str

        class Unlinked(RegistryAggregate.Event):
            repository: str
            digest: str

    @staticmethod
    def create_id(repository: str, digest: str) -> UUID:
        return name_id("blob-link", repository, digest)

    @event("Created", topic="dockyard.BlobLink.Created")
    def __init__(self, repository: str, digest: str) -> None:
        self.repository = repository
        self.digest = digest
        self.linked = False

    @event("Linked", topic="dockyard.BlobLink.Linked")
    def _linked(self, repository: str, digest: str, size: int, source: str) -> None:
        self.linked = True
        self.size = size

    @event("Unlinked", topic="dockyard.BlobLink.Unlinked")
    def _unlinked(self, repository: str, digest: str) -> None:
        self.linked = False

    def link(self, size: int, source: str) -> None:
        """Link the blob; `source` is `upload` or `mount:<repository>`. Linking twice is a no-op."""
        if not self.linked:
            self._linked(self.repository, self.digest, size, source)

    def unlink(self) -> None:
        if self.linked:
            self._unlinked(self.repository, self.digest)
