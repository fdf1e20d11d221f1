"""The tamper-evident chain's own history: `AuditChain.Created` records, once, that the chain
started, and how many events stored before it existed were chained then (DESIGN.md rule 6:
even the system's own acts are events)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.domain import event

from dockyard.domain.aggregate import RegistryAggregate, name_id


class AuditChain(RegistryAggregate):
    TOPIC = "dockyard.AuditChain"

    if TYPE_CHECKING:  # the event classes `@event` makes at run time (fields: the method's)
        class Created(RegistryAggregate.Created):
            backfilled: int
            first_position: int
            last_position: int

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return name_id("audit-chain", "log")

    @event("Created", topic="dockyard.AuditChain.Created")
    def __init__(self, backfilled: int, first_position: int, last_position: int) -> None:
        """`backfilled` events, positions `first_position`..`last_position`, were stored before the
        chain existed and are chained in this event's transaction."""
        self.backfilled = backfilled
