"""The registry's general settings (DTR's Settings > General): its domain name.

The domain name is what clients use to reach the registry (`registry.example.com` or
`registry.example.com:5443`): links and the pull commands the portal shows use it, and
Dockyard's own TLS certificate (operations) follows it. Empty: not set.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.domain import event

from dockyard.domain.aggregate import RegistryAggregate, name_id
from dockyard.domain.errors import InvalidRequest

_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})*(:[0-9]{{1,5}})?$")


def check_domain_name(name: str) -> str:
    """A host name (RFC 1123 labels, 253 characters at most) or IPv4 address, with an optional
    port; lowercased. Empty is allowed (unset)."""
    name = name.strip().lower()
    if not name:
        return ""
    host, _, port = name.partition(":")
    if len(host) > 253 or not _DOMAIN.match(name) or (port and not 0 < int(port) < 65536):
        raise InvalidRequest("the domain name must be a host name such as registry.example.com, "
                             "optionally with :port", {"domainName": name})
    return name


class GeneralSettings(RegistryAggregate):
    TOPIC = "dockyard.GeneralSettings"

    if TYPE_CHECKING:  # the event classes `@event` makes at run time (fields: the method's)
        class Created(RegistryAggregate.Created):
            pass

        class DomainNameChanged(RegistryAggregate.Event):
            domain_name: str

    @staticmethod
    def create_id() -> UUID:
        return name_id("settings", "general")

    @event("Created", topic="dockyard.GeneralSettings.Created")
    def __init__(self) -> None:
        self.domain_name = ""

    @event("DomainNameChanged", topic="dockyard.GeneralSettings.DomainNameChanged")
    def _domain_name_changed(self, domain_name: str) -> None:
        self.domain_name = domain_name

    def change_domain_name(self, domain_name: str) -> bool:
        """Record a new domain name; the same one again records nothing."""
        domain_name = check_domain_name(domain_name)
        if domain_name == self.domain_name:
            return False
        self._domain_name_changed(domain_name)
        return True
