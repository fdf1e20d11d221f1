"""A manifest revision in a repository: pushed byte for byte, deleted, pushed again."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.domain import event

from dockyard.domain.aggregate import RegistryAggregate, name_id, opened_by


@opened_by("Pushed")
class Manifest(RegistryAggregate):
    """One aggregate per (repository, digest).

    `Pushed` carries the exact bytes (base64) and every digest they reference, so projections,
    restore and GC never need to read storage. A new one is `Manifest.unborn(repository=…,
    digest=…)`, then `push`: its log begins with `Pushed` at version 1. Logs written before
    that begin with a bare `Created` (what calling `Manifest(…)` still records) and still load.
    """

    TOPIC = "dockyard.Manifest"

    if TYPE_CHECKING:  # the event classes `@event` makes at run time (fields: the method's)
        class Created(RegistryAggregate.Created):  # only in logs written before `Pushed` opened them
            repository: str
            digest: str

        class Pushed(RegistryAggregate.Event):
            repository: str
            digest: str
            media_type: str
            size: int
            payload: str
            blobs: list[str]
            manifests: list[str]
            subject: str | None
            artifact_type: str | None
            annotations: dict[str, str]
            by_digest: bool

        class Deleted(RegistryAggregate.Event):
            repository: str
            digest: str

    @staticmethod
    def create_id(repository: str, digest: str) -> UUID:
        return name_id("manifest", repository, digest)

    @event("Created", topic="dockyard.Manifest.Created")
    def __init__(self, repository: str, digest: str) -> None:
        self.repository = repository
        self.digest = digest
        self.present = False

    @event("Pushed", topic="dockyard.Manifest.Pushed")
    def push(
        self,
        repository: str,
        digest: str,
        media_type: str,
        size: int,
        payload: str,
        blobs: list[str],
        manifests: list[str],
        subject: str | None,
        artifact_type: str | None,
        annotations: dict[str, str],
        by_digest: bool = False,
    ) -> None:
        """Record the manifest's exact bytes (`payload`, base64) and what they reference.
        `by_digest`: the push named the digest, no tag (a push by tag records the tag's `Moved`
        with it, in the same transaction; notifications tell of a push once, by that)."""
        self.present = True

    @event("Deleted", topic="dockyard.Manifest.Deleted")
    def _deleted(self, repository: str, digest: str) -> None:
        self.present = False

    def delete(self) -> None:
        """Delete this revision; deleting one that is not present records nothing."""
        if self.present:
            self._deleted(self.repository, self.digest)

    @staticmethod
    def encode_payload(body: bytes) -> str:
        return base64.b64encode(body).decode("ascii")

    @staticmethod
    def decode_payload(payload: str) -> bytes:
        return base64.b64decode(payload)


def _pushed_v1_v2(state: dict[str, object]) -> None:
    # `by_digest` came with class version 2. Earlier pushes are taken as by tag: they were never
    # notified as pushes by digest, and are not now.
    state["by_digest"] = False


# Set on the class `@event` made (the `TYPE_CHECKING` one above is for type checkers only).
setattr(Manifest.Pushed, "class_version", 2)  # noqa: B010
setattr(Manifest.Pushed, "upcast_v1_v2", staticmethod(_pushed_v1_v2))  # noqa: B010
