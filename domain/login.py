"""Login throttling, recorded: a `Throttled` event each time a user+address pair is locked out."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.domain import event

from dockyard.domain.aggregate import RegistryAggregate, name_id


class LoginGuard(RegistryAggregate):
    TOPIC = "dockyard.LoginGuard"

    if TYPE_CHECKING:  # the event classes `@event` makes at run time (fields: the method's)
        class Created(RegistryAggregate.Created):
            user: str
            address: str

        class Throttled(RegistryAggregate.Event):
            user: str
            address: str
            failures: int
            until: str

    @staticmethod
    def create_id(user: str, address: str) -> UUID:
        return name_id("login-guard", user, address)

    @event("Created", topic="dockyard.LoginGuard.Created")
    def __init__(self, user: str, address: str) -> None:
        self.user = user
        self.address = address
        self.until: str | None = None

    @event("Throttled", topic="dockyard.LoginGuard.Throttled")
    def throttle(self, user: str, address: str, failures: int, until: str) -> None:
        """Too many failed logins: refuse this user from this address until `until` (ISO time)."""
        self.until = until
