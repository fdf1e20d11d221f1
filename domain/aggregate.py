"""The base of every Dockyard aggregate: deterministic ids and events that say who and from where.

Stored topics are explicit (`dockyard.<Aggregate>.<Event>`) so that moving or renaming a
module never orphans stored events; a changed event shape gets `class_version` + `upcast_*`.
"""

from __future__ import annotations

from dataclasses import field
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from dockyard.domain.actor import current_actor

_NAMESPACE = uuid5(NAMESPACE_URL, "https://dockyard.invalid/aggregates")


def name_id(kind: str, *parts: str) -> UUID:
    """A stable aggregate id derived from names, so 'create twice' is a version conflict."""
    return uuid5(_NAMESPACE, kind + ":" + "\x00".join(parts))


def _actor_name() -> str:
    return current_actor.get().name


def _actor_address() -> str:
    return current_actor.get().address


def _actor_token() -> str | None:
    return current_actor.get().token


class RegistryAggregate(Aggregate):
    """Events of subclasses carry `actor`, `client_address` and `token` from `current_actor`."""

    class Event(Aggregate.Event):
        actor: str = field(default_factory=_actor_name, init=False)
        client_address: str = field(default_factory=_actor_address, init=False)
        token: str | None = field(default_factory=_actor_token, init=False)

    class Created(Event, Aggregate.Created):
        pass
