"""A webhook subscription: where to send notifications about which repositories' changes.

Made by global admins and organisation owners (`check_may_subscribe`); each creation and
deletion is an event. The signing secret is never part of an event (the log is exported to
auditors): the command keeps it in the secret store under `secret_id(id)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from uuid import UUID

from eventsourcing.domain import event

from dockyard.domain import access
from dockyard.domain.access import Principal
from dockyard.domain.account import check_account_name
from dockyard.domain.aggregate import RegistryAggregate
from dockyard.domain.errors import Denied, InvalidRequest
from dockyard.domain.names import check_repository_name

# The kinds of notification a subscription may ask for, and the audit actions each covers.
KINDS: dict[str, frozenset[str]] = {
    # A tag set to a manifest (Tag.Created carries no digest), or a manifest pushed by digest.
    "push": frozenset({"tag.moved", "manifest.pushed"}),
    "delete": frozenset({"tag.deleted", "manifest.deleted", "repository.deleted"}),
    "restore": frozenset({"repository.restored", "tag.restored"}),
}
MAX_URL = 2000


def kind_of(action: str, details: dict[str, Any] | None = None) -> str | None:
    """The notification kind of an audit action with its event's `details` (None: not notified).

    One push, one notification, as Distribution sends one per manifest PUT: a push by tag
    records the tag's `Moved` (with the manifest's `Pushed` when the manifest is new, in the
    same transaction), and is told by the `Moved`; a push by digest records only the manifest's
    `Pushed`, marked `by_digest`, and is told by that. A push that records nothing (the same
    bytes under the same name again) is not told.
    """
    if action == "manifest.pushed" and not (details or {}).get("by_digest"):
        return None
    return next((kind for kind, actions in KINDS.items() if action in actions), None)


def secret_id(webhook_id: UUID | str) -> str:
    return f"webhook:{webhook_id}"


def check_subscription(url: str, events: list[str], namespace: str | None, repository: str | None) -> str:
    """The namespace the subscription covers; `InvalidRequest` naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > MAX_URL:
        raise InvalidRequest("url must be an absolute http or https URL", {"url": url})
    unknown = sorted(set(events) - set(KINDS))
    if not events or unknown:
        raise InvalidRequest(f"events must be a non-empty list of {', '.join(KINDS)}", {"unknown": unknown})
    if (namespace is None) == (repository is None):
        raise InvalidRequest("give exactly one of namespace or repository")
    if repository is not None:
        check_repository_name(repository)
        return access.namespace_of(repository)
    assert namespace is not None
    return check_account_name(namespace)


def check_may_subscribe(principal: Principal, namespace: str, is_owner: bool) -> None:
    """Global admins, and the owners of the organisation whose repositories it covers."""
    access.check_account_scope(principal)
    if not principal.is_admin and not is_owner:
        raise Denied("only global admins and the organisation's owners may manage its webhooks",
                     {"namespace": namespace})


class Webhook(RegistryAggregate):
    TOPIC = "dockyard.Webhook"

    if TYPE_CHECKING:  # the event classes `@event` makes at run time (fields: the method's)
        class Created(RegistryAggregate.Created):
            url: str
            events: list[str]
            namespace: str
            repository: str | None
            owner: str

        class Deleted(RegistryAggregate.Event):
            pass

    @event("Created", topic="dockyard.Webhook.Created")
    def __init__(self, url: str, events: list[str], namespace: str, repository: str | None, owner: str) -> None:
        self.url = url
        self.events = list(events)
        self.namespace = namespace
        self.repository = repository
        self.owner = owner  # whose read access bounds what is sent
        self.deleted = False

    @event("Deleted", topic="dockyard.Webhook.Deleted")
    def _deleted(self) -> None:
        self.deleted = True

    def delete(self) -> None:
        if not self.deleted:
            self._deleted()
