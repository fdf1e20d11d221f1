"""A repository: created on first push (or explicitly), soft-deleted, restored."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import event

from dockyard.domain.aggregate import RegistryAggregate, name_id

PRIVATE, PUBLIC = "private", "public"


class Repository(RegistryAggregate):
    TOPIC = "dockyard.Repository"

    @staticmethod
    def create_id(name: str, visibility: str = PRIVATE, description: str = "") -> UUID:
        return name_id("repository", name)

    @event("Created", topic="dockyard.Repository.Created")
    def __init__(self, name: str, visibility: str = PRIVATE, description: str = "") -> None:
        self.name = name
        self.visibility = visibility
        self.description = description
        self.deleted = False

    @event("Deleted", topic="dockyard.Repository.Deleted")
    def _deleted(self, name: str) -> None:
        self.deleted = True

    @event("Restored", topic="dockyard.Repository.Restored")
    def _restored(self, name: str) -> None:
        self.deleted = False

    def delete(self) -> None:
        """Soft delete: the repository disappears from every view; its log stays."""
        if not self.deleted:
            self._deleted(self.name)

    def restore(self) -> None:
        if self.deleted:
            self._restored(self.name)
