"""A tag: a movable name for a manifest digest within one repository.

A new tag's log begins with its first `Moved` (`previous` None); logs written before that
change begin with a bare `Created` and still load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.domain import event

from dockyard.domain.aggregate import RegistryAggregate, name_id, opened_by


@opened_by("Moved")
class Tag(RegistryAggregate):
    """One aggregate per (repository, tag), so pushes of different tags never conflict.

    A new one is `Tag.unborn(repository=…, name=…)`, then `point_at`: one `Moved` at version 1.
    Calling `Tag(…)` records the old bare `Created` (how logs began before; tests write that
    shape with it)."""

    TOPIC = "dockyard.Tag"

    if TYPE_CHECKING:  # the event classes `@event` makes at run time (fields: the method's)
        class Created(RegistryAggregate.Created):  # only in logs written before tags opened with `Moved`
            repository: str
            name: str

        class Moved(RegistryAggregate.Event):
            repository: str
            name: str
            digest: str
            previous: str | None

        class Deleted(RegistryAggregate.Event):
            repository: str
            name: str
            digest: str

    @staticmethod
    def create_id(repository: str, name: str) -> UUID:
        return name_id("tag", repository, name)

    @event("Created", topic="dockyard.Tag.Created")
    def __init__(self, repository: str, name: str) -> None:
        self.repository = repository
        self.name = name
        self.digest: str | None = None

    @event("Moved", topic="dockyard.Tag.Moved")
    def _moved(self, repository: str, name: str, digest: str, previous: str | None) -> None:
        self.digest = digest

    @event("Deleted", topic="dockyard.Tag.Deleted")
    def _deleted(self, repository: str, name: str, digest: str) -> None:
        self.digest = None

    def point_at(self, digest: str) -> bool:
        """Point the tag at `digest`; re-pushing what it already points at records nothing.

        The `Moved` event names the previous digest (None for a new tag) for the tag history.
        Returns whether an event was recorded.
        """
        if self.digest == digest:
            return False
        self._moved(self.repository, self.name, digest, self.digest)
        return True

    def delete(self) -> None:
        """Remove the tag; the event keeps the digest it pointed at."""
        if self.digest is not None:
            self._deleted(self.repository, self.name, self.digest)
