"""User accounts. Password hashes are computed by the application; the domain only keeps them."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import event

from dockyard.domain.aggregate import RegistryAggregate, name_id

ROLES = ("none", "read-only", "read-write", "admin")


class User(RegistryAggregate):
    TOPIC = "dockyard.User"

    @staticmethod
    def create_id(name: str, password_hash: str, role: str) -> UUID:
        return name_id("account", name)

    @event("Created", topic="dockyard.User.Created")
    def __init__(self, name: str, password_hash: str, role: str) -> None:
        self.name = name
        self.password_hash = password_hash
        self.role = role
        self.active = True

    @event("PasswordChanged", topic="dockyard.User.PasswordChanged")
    def change_password(self, name: str, password_hash: str) -> None:
        self.password_hash = password_hash

    @event("RoleChanged", topic="dockyard.User.RoleChanged")
    def change_role(self, name: str, role: str) -> None:
        self.role = role
