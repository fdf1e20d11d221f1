"""A garbage-collection run: started at a log position, the blobs it deleted, how it finished.

Each run is one aggregate (a fresh id per run). `BlobCollected` is recorded in the very
transaction that deleted the blob's bytes, after the delete succeeded, so the log never says a
blob is gone that is still stored (storage first, then metadata, as GitLab's online GC).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID, uuid4

from eventsourcing.domain import event

from dockyard.domain.aggregate import RegistryAggregate


class GcRun(RegistryAggregate):
    TOPIC = "dockyard.GcRun"

    if TYPE_CHECKING:  # the event classes `@event` makes at run time (fields: the method's)
        class Started(RegistryAggregate.Event):
            position: int
            dry_run: bool
            grace_seconds: float
            delete_untagged: bool

        class BlobCollected(RegistryAggregate.Event):
            digest: str
            size: int
            reason: str
            reason_position: int | None

        class Finished(RegistryAggregate.Event):
            candidates: int
            deleted: int
            kept: int
            bytes_freed: int
            errors: list[str]
            duration_seconds: float
            orphans_seen: list[str]

        class Abandoned(RegistryAggregate.Event):
            reason: str

    class Created(RegistryAggregate.Created):
        TOPIC = "dockyard.GcRun.Created"  # unused: a run begins with `Started`

    @staticmethod
    def create_id(position: int, dry_run: bool, grace_seconds: float, delete_untagged: bool) -> UUID:
        return uuid4()

    @event("Started", topic="dockyard.GcRun.Started")
    def __init__(self, position: int, dry_run: bool, grace_seconds: float, delete_untagged: bool) -> None:
        """`position`: the log position P the mark is a function of."""
        self.position = position
        self.dry_run = dry_run
        self.grace_seconds = grace_seconds
        self.delete_untagged = delete_untagged
        self.collected = 0
        self.bytes_freed = 0
        self.finished = False
        self.abandoned = False

    @event("BlobCollected", topic="dockyard.GcRun.BlobCollected")
    def collected_blob(self, digest: str, size: int, reason: str, reason_position: int | None) -> None:
        """The blob `digest` (`size` bytes) is gone from storage; `reason` says why it went, and
        `reason_position` is the event that left it unreferenced (None: never in the log)."""
        self.collected += 1
        self.bytes_freed += size

    @event("Finished", topic="dockyard.GcRun.Finished")
    def finish(self, candidates: int, deleted: int, kept: int, bytes_freed: int, errors: list[str],
               duration_seconds: float, orphans_seen: list[str]) -> None:
        """`orphans_seen`: blobs in storage that no event names, first seen by this run; a later
        run deletes them once the grace period has passed since this one."""
        self.finished = True

    def abandon(self, reason: str) -> bool:
        """Record that this run ended without finishing (its process died: the GC lock was found
        free while the run was still open). A finished or already abandoned run records nothing;
        returns whether this recorded the event."""
        if self.finished or getattr(self, "abandoned", False):
            return False
        self._abandoned(reason)
        return True

    @event("Abandoned", topic="dockyard.GcRun.Abandoned")
    def _abandoned(self, reason: str) -> None:
        """`reason`: how the run was found dead. Its `BlobCollected` events stand: each was
        recorded only once its blob was gone."""
        self.abandoned = True
