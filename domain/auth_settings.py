"""The registry's authentication settings (DTR's Settings > Auth), one aggregate.

The LDAP bind password is a secret: it never enters the log. The event records only that it
was changed (`bind_password_changed`), and the application keeps the value in its secret store.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.domain import event

from dockyard.domain.aggregate import RegistryAggregate, name_id
from dockyard.domain.errors import InvalidRequest

MODES = ("none", "managed", "ldap")
LDAP_FIELDS = ("url", "bindDn", "userBaseDn", "userFilter", "usernameAttribute", "startTls")


LDAP_URL_PATTERN = r"^ldaps?://"


def check_ldap_url(url: str) -> str:
    """An LDAP server URL starts with `ldap://` or `ldaps://` (`InvalidRequest` otherwise)."""
    if not re.match(LDAP_URL_PATTERN, url):
        raise InvalidRequest("ldap.url must start with ldap:// or ldaps://", {"url": url})
    return url


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise InvalidRequest(f"mode must be one of {', '.join(MODES)}", {"mode": mode})
    return mode


class AuthSettings(RegistryAggregate):
    TOPIC = "dockyard.AuthSettings"

    if TYPE_CHECKING:  # the event classes `@event` makes at run time (fields: the method's)
        class Created(RegistryAggregate.Created):
            pass

        class Changed(RegistryAggregate.Event):
            mode: str
            ldap: dict[str, object]
            bind_password_changed: bool

    @staticmethod
    def create_id() -> UUID:
        return name_id("settings", "auth")

    @event("Created", topic="dockyard.AuthSettings.Created")
    def __init__(self) -> None:
        self.mode = "managed"
        self.ldap: dict[str, object] = {}

    @event("Changed", topic="dockyard.AuthSettings.Changed")
    def change(self, mode: str, ldap: dict[str, object], bind_password_changed: bool) -> None:
        """Switch to `mode` with the (non-secret) LDAP settings `ldap`."""
        self.mode = mode
        self.ldap = dict(ldap)
