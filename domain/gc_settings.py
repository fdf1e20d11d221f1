"""The GC policy (DTR's Settings > Garbage Collection): when it runs and what it may delete."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.domain import event

from dockyard.domain.aggregate import RegistryAggregate, name_id
from dockyard.domain.errors import InvalidRequest

DEFAULT_GRACE_HOURS = 1.0


def check_grace_hours(hours: float) -> float:
    if not hours >= 0:  # also refuses NaN
        raise InvalidRequest("graceHours must be zero or more", {"graceHours": hours})
    return float(hours)


class GcSettings(RegistryAggregate):
    """One aggregate for the whole registry. `schedule` is a cron expression (None: no schedule),
    checked by the command (the domain does not know the cron library)."""

    TOPIC = "dockyard.GcSettings"

    if TYPE_CHECKING:  # the event classes `@event` makes at run time (fields: the method's)
        class Created(RegistryAggregate.Created):
            pass

        class Changed(RegistryAggregate.Event):
            schedule: str | None
            delete_untagged: bool
            grace_hours: float

    @staticmethod
    def create_id() -> UUID:
        return name_id("gc-settings")

    @event("Created", topic="dockyard.GcSettings.Created")
    def __init__(self) -> None:
        self.schedule: str | None = None
        self.delete_untagged = False
        self.grace_hours = DEFAULT_GRACE_HOURS

    @event("Changed", topic="dockyard.GcSettings.Changed")
    def _changed(self, schedule: str | None, delete_untagged: bool, grace_hours: float) -> None:
        self.schedule = schedule
        self.delete_untagged = delete_untagged
        self.grace_hours = grace_hours

    def change(self, schedule: str | None, delete_untagged: bool, grace_hours: float) -> bool:
        """Record the new policy; the same policy again records nothing. Returns whether it changed."""
        new = (schedule, delete_untagged, check_grace_hours(grace_hours))
        if new == (self.schedule, self.delete_untagged, self.grace_hours):
            return False
        self._changed(*new)
        return True
