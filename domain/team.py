"""Teams of an organisation, and their members. Every organisation has an `owners` team."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.domain import event

from dockyard.domain.aggregate import RegistryAggregate, name_id
from dockyard.domain.errors import Conflict, InvalidRequest

OWNERS = "owners"
_TEAM_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")


def check_team_name(name: str) -> str:
    if not isinstance(name, str) or len(name) > 64 or not _TEAM_NAME.fullmatch(name):
        raise InvalidRequest("invalid team name: lowercase letters, digits and . _ - separators", {"name": name})
    return name


class Team(RegistryAggregate):
    TOPIC = "dockyard.Team"

    if TYPE_CHECKING:  # the event classes `@event` makes at run time (fields: the method's)
        class Created(RegistryAggregate.Created):
            organization: str
            name: str
            description: str

        class MemberAdded(RegistryAggregate.Event):
            organization: str
            team: str
            user: str

        class MemberRemoved(RegistryAggregate.Event):
            organization: str
            team: str
            user: str

        class Deleted(RegistryAggregate.Event):
            organization: str
            team: str

        class Recreated(RegistryAggregate.Event):
            organization: str
            team: str
            description: str

    @staticmethod
    def create_id(organization: str, name: str, description: str = "") -> UUID:
        return name_id("team", organization, name)

    @event("Created", topic="dockyard.Team.Created")
    def __init__(self, organization: str, name: str, description: str = "") -> None:
        self.organization = organization
        self.name = name
        self.description = description
        self.members: list[str] = []
        self.deleted = False

    @event("MemberAdded", topic="dockyard.Team.MemberAdded")
    def _member_added(self, organization: str, team: str, user: str) -> None:
        self.members.append(user)

    @event("MemberRemoved", topic="dockyard.Team.MemberRemoved")
    def _member_removed(self, organization: str, team: str, user: str) -> None:
        self.members.remove(user)

    @event("Deleted", topic="dockyard.Team.Deleted")
    def _deleted(self, organization: str, team: str) -> None:
        self.deleted = True
        self.members = []

    @event("Recreated", topic="dockyard.Team.Recreated")
    def _recreated(self, organization: str, team: str, description: str) -> None:
        self.deleted = False
        self.description = description
        self.members = []

    def recreate(self, description: str) -> None:
        """Create a deleted team's name again: a new, empty team (its old grants went with it)."""
        if not self.deleted:
            raise Conflict("a team with this name already exists", {"team": self.name})
        self._recreated(self.organization, self.name, description)

    def add_member(self, user: str) -> bool:
        """Add `user`; returns whether anything changed (adding a member twice records nothing)."""
        if user in self.members:
            return False
        self._member_added(self.organization, self.name, user)
        return True

    def remove_member(self, user: str) -> bool:
        """Remove `user`. The last member of `owners` cannot be removed (`Conflict`)."""
        if user not in self.members:
            return False
        if self.name == OWNERS and len(self.members) == 1:
            raise Conflict("the last owner of an organisation cannot be removed",
                           {"organization": self.organization, "user": user})
        self._member_removed(self.organization, self.name, user)
        return True

    def delete(self) -> None:
        if self.name == OWNERS:
            raise Conflict("the owners team cannot be deleted", {"organization": self.organization})
        self._deleted(self.organization, self.name)
