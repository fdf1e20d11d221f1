"""A repository: created on first push or explicitly, with visibility, description and the
access teams of its organisation have on it; soft-deleted and restored."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.domain import event

from dockyard.domain.aggregate import RegistryAggregate, name_id
from dockyard.domain.errors import InvalidRequest

PRIVATE, PUBLIC = "private", "public"
VISIBILITIES = (PRIVATE, PUBLIC)
TEAM_LEVELS = ("read-only", "read-write", "admin")


def check_visibility(visibility: str) -> str:
    if visibility not in VISIBILITIES:
        raise InvalidRequest("visibility must be 'public' or 'private'", {"visibility": visibility})
    return visibility


def check_team_level(level: str) -> str:
    if level not in TEAM_LEVELS:
        raise InvalidRequest(f"accessLevel must be one of {', '.join(TEAM_LEVELS)}", {"accessLevel": level})
    return level


class Repository(RegistryAggregate):
    TOPIC = "dockyard.Repository"

    if TYPE_CHECKING:  # the event classes `@event` makes at run time (fields: the method's)
        class Created(RegistryAggregate.Created):
            name: str
            visibility: str
            description: str

        class Deleted(RegistryAggregate.Event):
            name: str

        class Restored(RegistryAggregate.Event):
            name: str

        class VisibilityChanged(RegistryAggregate.Event):
            name: str
            visibility: str

        class DescriptionChanged(RegistryAggregate.Event):
            name: str
            description: str

        class TeamAccessGranted(RegistryAggregate.Event):
            name: str
            organization: str
            team: str
            level: str

        class TeamAccessRevoked(RegistryAggregate.Event):
            name: str
            organization: str
            team: str

    @staticmethod
    def create_id(name: str, visibility: str = PRIVATE, description: str = "") -> UUID:
        return name_id("repository", name)

    @event("Created", topic="dockyard.Repository.Created")
    def __init__(self, name: str, visibility: str = PRIVATE, description: str = "") -> None:
        self.name = name
        self.visibility = visibility
        self.description = description
        self.deleted = False
        self.team_access: dict[str, str] = {}

    @property
    def namespace(self) -> str:
        return self.name.split("/", 1)[0]

    @event("Deleted", topic="dockyard.Repository.Deleted")
    def _deleted(self, name: str) -> None:
        self.deleted = True

    @event("Restored", topic="dockyard.Repository.Restored")
    def _restored(self, name: str) -> None:
        self.deleted = False

    @event("VisibilityChanged", topic="dockyard.Repository.VisibilityChanged")
    def _visibility_changed(self, name: str, visibility: str) -> None:
        self.visibility = visibility

    @event("DescriptionChanged", topic="dockyard.Repository.DescriptionChanged")
    def _description_changed(self, name: str, description: str) -> None:
        self.description = description

    @event("TeamAccessGranted", topic="dockyard.Repository.TeamAccessGranted")
    def _team_access_granted(self, name: str, organization: str, team: str, level: str) -> None:
        self.team_access[team] = level

    @event("TeamAccessRevoked", topic="dockyard.Repository.TeamAccessRevoked")
    def _team_access_revoked(self, name: str, organization: str, team: str) -> None:
        self.team_access.pop(team, None)

    def delete(self) -> None:
        """Soft delete: the repository disappears from every view; its log stays. Team grants
        are revoked first, so a repository made again under this name starts with none."""
        if not self.deleted:
            for team in sorted(self.team_access):
                self.revoke(team)
            self._deleted(self.name)

    def recreate(self, visibility: str = PRIVATE, description: str = "") -> None:
        """Make a deleted repository live again as a new one would be (by a push, or created
        in the API): with `visibility` and `description`, and no grants."""
        if self.deleted:
            self._restored(self.name)
        self.set_visibility(visibility)
        self.set_description(description)

    def set_visibility(self, visibility: str) -> None:
        if check_visibility(visibility) != self.visibility:
            self._visibility_changed(self.name, visibility)

    def set_description(self, description: str) -> None:
        if description != self.description:
            self._description_changed(self.name, description)

    def grant(self, team: str, level: str) -> None:
        """Give `team` (of this repository's organisation) `level` on it."""
        if self.team_access.get(team) != check_team_level(level):
            self._team_access_granted(self.name, self.namespace, team, level)

    def revoke(self, team: str) -> bool:
        if team not in self.team_access:
            return False
        self._team_access_revoked(self.name, self.namespace, team)
        return True
