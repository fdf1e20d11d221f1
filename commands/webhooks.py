"""Webhook subscriptions: create and delete them (events), read them back from the log.

Who may: `domain.webhook.check_may_subscribe`. The secret goes to the secret store (never to
the log, never back in a response). A subscription is notified of the events after the one
that created it (`position`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from dockyard.commands.registry import Registry
from dockyard.domain.access import Principal
from dockyard.domain.errors import InvalidRequest, NotFound
from dockyard.domain.webhook import Webhook, check_may_subscribe, check_subscription, secret_id
from dockyard.projections.identity_queries import IdentityQueries

TOPICS = ["dockyard.Webhook.Created", "dockyard.Webhook.Deleted"]
MIN_SECRET = 16


class Secrets(Protocol):
    """Where secrets live outside the log (`commands.secrets.SecretStore`)."""

    def get(self, secret_id: str) -> str | None: ...

    def put(self, secret_id: str, value: str) -> None: ...


@dataclass(frozen=True)
class Subscription:
    id: str
    url: str
    events: tuple[str, ...]
    namespace: str
    repository: str | None
    owner: str
    position: int  # the log position of its creation: it is notified of what comes after
    created_at: str


def subscriptions(registry: Registry) -> dict[str, Subscription]:
    """The live subscriptions, by id, in order of creation (folded from the log's webhook events)."""
    found: dict[str, Subscription] = {}
    start = 0
    while batch := registry.recorder.select_notifications(start, 1000, topics=TOPICS, inclusive_of_start=False):
        for n in batch:
            e: Any = registry.mapper.to_domain_event(n)
            key = str(e.originator_id)
            if n.topic == TOPICS[0]:
                found[key] = Subscription(key, e.url, tuple(e.events), e.namespace, e.repository, e.owner, n.id,
                                          e.timestamp.isoformat())
            else:
                found.pop(key, None)
        start = batch[-1].id
    return found


class Webhooks:
    def __init__(self, registry: Registry, identity_view: IdentityQueries, secrets: Secrets) -> None:
        self.registry, self.identity_view, self.secrets = registry, identity_view, secrets

    def _check(self, principal: Principal, namespace: str) -> None:
        is_owner = principal.name is not None and self.identity_view.is_owner(principal.name, namespace)
        check_may_subscribe(principal, namespace, is_owner)

    def create(self, principal: Principal, url: str, events: list[str], namespace: str | None,
               repository: str | None, secret: str) -> Subscription:
        covered = check_subscription(url, events, namespace, repository)
        if len(secret) < MIN_SECRET:
            raise InvalidRequest(f"secret must be at least {MIN_SECRET} characters")
        self._check(principal, covered)
        webhook = Webhook(url, sorted(set(events)), covered, repository, principal.name or "")
        # The secret first: a subscription in the log always has its secret.
        self.secrets.put(secret_id(webhook.id), secret)
        self.registry.save(webhook)
        return subscriptions(self.registry)[str(webhook.id)]

    def get(self, principal: Principal, webhook_id: str) -> Subscription:
        """One subscription, for admins and its namespace's owners (`NotFound` for others)."""
        found = subscriptions(self.registry).get(webhook_id)
        if found is None or not self.may_manage(principal, found.namespace):
            raise NotFound("no such webhook", {"id": webhook_id})
        return found

    def may_manage(self, principal: Principal, namespace: str) -> bool:
        try:
            self._check(principal, namespace)
        except Exception:  # noqa: BLE001 - Denied: not theirs
            return False
        return True

    def visible(self, principal: Principal) -> list[Subscription]:
        return [s for s in subscriptions(self.registry).values() if self.may_manage(principal, s.namespace)]

    def delete(self, principal: Principal, webhook_id: str) -> None:
        self.get(principal, webhook_id)

        def command() -> None:
            webhook = self.registry.load(Webhook, UUID(webhook_id))
            if webhook is not None and not webhook.deleted:
                webhook.delete()
                self.registry.save(webhook)

        self.registry.retrying(command)

    def secret(self, webhook_id: str) -> str | None:
        return self.secrets.get(secret_id(webhook_id))
