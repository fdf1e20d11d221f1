"""Accounts: users and organisations, which share one namespace (a name is one or the other).

Both aggregates take their id from `name_id("account", name)`, so creating an organisation
named like an existing user is a version conflict at the event store, whatever races.
Password hashes are computed by the application; the domain only keeps them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.domain import event

from dockyard.domain.aggregate import RegistryAggregate, name_id
from dockyard.domain.errors import Conflict, InvalidRequest

ROLES = ("none", "read-only", "read-write", "admin")
SOURCES = ("managed", "ldap")
_ACCOUNT_NAME = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$")
MAX_ACCOUNT_NAME = 64
MIN_PASSWORD_LENGTH = 8  # the default of the password policy (DOCKYARD_PASSWORD_MIN_LENGTH)


def account_id(name: str) -> UUID:
    return name_id("account", name)


def check_account_name(name: str) -> str:
    """A user or organisation name is one repository-name component (it is the namespace)."""
    if not isinstance(name, str) or len(name) > MAX_ACCOUNT_NAME or not _ACCOUNT_NAME.fullmatch(name):
        raise InvalidRequest("invalid account name: lowercase letters, digits and . _ - separators",
                             {"name": name})
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(ROLES)}", {"role": role})
    return role


def check_password(password: str, min_length: int = MIN_PASSWORD_LENGTH) -> str:
    """The password policy: at least `min_length` characters (never fewer than one). The error
    says the rule, never the password."""
    min_length = max(1, min_length)
    if not isinstance(password, str) or len(password) < min_length:
        raise InvalidRequest(f"the password must be at least {min_length} characters long",
                             {"minLength": min_length})
    return password


def stops_being_admin(user: User, role: str | None, active: bool | None) -> bool:
    """Whether changing `user`'s role to `role` or active flag to `active` (None: unchanged)
    makes an active global admin stop being one."""
    return user.active and user.role == "admin" and ((role is not None and role != "admin") or active is False)


def check_keeps_an_admin(name: str, stops: bool, other_active_admins: Callable[[], int]) -> None:
    """The last-admin rule: no change may leave the registry without an active global admin
    (`Conflict`). `stops`: the change makes `name` stop being one (`stops_being_admin`);
    `other_active_admins` counts the active admins other than `name` (asked only then)."""
    if stops and other_active_admins() == 0:
        raise Conflict("the last active global admin cannot be demoted or deactivated", {"name": name})


class User(RegistryAggregate):
    TOPIC = "dockyard.User"

    if TYPE_CHECKING:  # the event classes `@event` makes at run time (fields: the method's)
        class Created(RegistryAggregate.Created):
            name: str
            password_hash: str
            role: str
            source: str

        class PasswordChanged(RegistryAggregate.Event):
            name: str
            password_hash: str

        class RoleChanged(RegistryAggregate.Event):
            name: str
            role: str

        class Deactivated(RegistryAggregate.Event):
            name: str

        class Activated(RegistryAggregate.Event):
            name: str

    @staticmethod
    def create_id(name: str, password_hash: str, role: str, source: str = "managed") -> UUID:
        return account_id(name)

    @event("Created", topic="dockyard.User.Created")
    def __init__(self, name: str, password_hash: str, role: str, source: str = "managed") -> None:
        """`password_hash` is empty for directory (LDAP) users: the directory checks passwords."""
        self.name = name
        self.password_hash = password_hash
        self.role = role
        self.source = source
        self.active = True

    @event("PasswordChanged", topic="dockyard.User.PasswordChanged")
    def change_password(self, name: str, password_hash: str) -> None:
        self.password_hash = password_hash

    @event("RoleChanged", topic="dockyard.User.RoleChanged")
    def change_role(self, name: str, role: str) -> None:
        self.role = role

    @event("Deactivated", topic="dockyard.User.Deactivated")
    def _deactivated(self, name: str) -> None:
        self.active = False

    @event("Activated", topic="dockyard.User.Activated")
    def _activated(self, name: str) -> None:
        self.active = True

    def set_active(self, active: bool) -> bool:
        """Activate or deactivate; returns whether anything changed."""
        if active == self.active:
            return False
        (self._activated if active else self._deactivated)(self.name)
        return True


class Organization(RegistryAggregate):
    TOPIC = "dockyard.Organization"

    if TYPE_CHECKING:  # the event classes `@event` makes at run time (fields: the method's)
        class Created(RegistryAggregate.Created):
            name: str

    @staticmethod
    def create_id(name: str) -> UUID:
        return account_id(name)

    @event("Created", topic="dockyard.Organization.Created")
    def __init__(self, name: str) -> None:
        self.name = name
