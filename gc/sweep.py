"""Sweep: decide from the mark which stored blobs go, then delete each under the log's write lock.

`plan` is pure: the marker at P, the blob digests in storage, the policy and the time give one
`Decision` per blob, with its explanation. `collect` deletes one blob in one event transaction
whose fence (run under the log's single write lock, see `commands.persistence.Fence`):

1. folds the events recorded since the marker's position (read through the transaction's own
   cursor) and keeps the blob if any of them linked it or pushed, tagged or restored a manifest
   listing it ("touched after P");
2. deletes the bytes from storage — storage first, then metadata;
3. lets the transaction record `GcRun.BlobCollected` and unlink the blob from every repository.

A manifest push re-checks its blob links under the same lock, and linking a blob re-checks that
its bytes are stored, so a blob being swept is either kept or reported unknown to the client,
never acknowledged and then missing. If storage fails and the blob is still there, the fence
raises and nothing is recorded; the next run tries again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from dockyard.gc.mark import TOPICS, Marker
from dockyard.projections.dialect import Dialect
from dockyard.storage import BlobStore, StorageError, blob_key

DELETE, KEEP = "delete", "keep"


@dataclass(frozen=True)
class Decision:
    """What the sweep does with one stored blob, and why (`reason`, JSON-ready)."""

    digest: str
    action: str  # DELETE | KEEP
    size: int | None
    reason: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"digest": self.digest, "action": self.action, "size": self.size, "reason": self.reason}


def stored_digests(store: BlobStore) -> Iterator[str]:
    """The digests of the blobs in storage (`blobs/<algorithm>/<xx>/<hex>`), in no order."""
    for key in store.list("blobs"):
        parts = key.split("/")
        if len(parts) == 4 and parts[3].startswith(parts[2]):
            yield f"{parts[1]}:{parts[3]}"


def plan(marker: Marker, digests: Iterable[str], *, delete_untagged: bool, grace: timedelta,
         now: datetime) -> list[Decision]:
    """One decision per digest in storage, sorted by digest.

    Kept: a live manifest lists it (the holders are named), or the event that left it
    unreferenced is younger than `grace`. An orphan (in storage, named by no event) counts as
    unreferenced since the first run that saw it, or since `now` if none has.
    """
    live = marker.live(delete_untagged)
    cutoff = now - grace
    out = []
    for digest in sorted(set(digests)):
        size = marker.size_of(digest)
        holders = live.get(digest)
        if holders:
            out.append(Decision(digest, KEEP, size, {
                "why": "referenced", "position": marker.position,
                "holders": [h.as_dict() for h in holders]}))
            continue
        cause = marker.last_change(digest)
        since = cause.at if cause is not None else now
        reason: dict[str, Any] = {"position": marker.position,
                                  "unreferencedSince": cause.as_dict() if cause else None}
        if since > cutoff:
            reason["why"] = "grace period" if cause is not None else "orphan first seen now (grace period)"
            out.append(Decision(digest, KEEP, size, reason))
        else:
            reason["why"] = "unreferenced" if cause is not None else "orphan"
            out.append(Decision(digest, DELETE, size, reason))
    return out


class Kept(Exception):
    """Raised by the fence to keep a blob after all: nothing is recorded or deleted."""


class StorageFailed(Exception):
    """Storage could not delete the blob and it is still there: nothing is recorded."""


class Catchup:
    """Folds into `marker` the events recorded after its position, read through a transaction's
    cursor (a separate connection could not see past SQLite's lock, or would not be in it)."""

    def __init__(self, marker: Marker, recorder: Any, mapper: Any) -> None:
        self.marker, self.recorder, self.mapper = marker, recorder, mapper

    def __call__(self, dialect: Dialect, cursor: Any) -> None:
        if dialect.name == "postgres":
            table = f'"{self.recorder.datastore.schema}"."{self.recorder.events_table_name}"'
            statement = (f"SELECT notification_id AS id, originator_id, originator_version, topic, state "
                         f"FROM {table} WHERE notification_id > %s ORDER BY notification_id")
        else:
            statement = (f"SELECT rowid AS id, originator_id, originator_version, topic, state "
                         f"FROM {self.recorder.events_table_name} WHERE rowid > ? ORDER BY rowid")
        cursor.execute(statement, (self.marker.position,))
        wanted = set(TOPICS)
        for row in cursor.fetchall():
            if row["topic"] in wanted:
                originator = row["originator_id"]
                stored = StoredEvent(
                    originator_id=originator if isinstance(originator, UUID) else UUID(originator),
                    originator_version=row["originator_version"], topic=row["topic"], state=bytes(row["state"]))
                self.marker.fold(row["id"], self.mapper.to_domain_event(stored))
            else:
                self.marker.position = row["id"]


def deletion_fence(catchup: Catchup, position: int, store: BlobStore, digest: str) -> Any:
    """The fence of the transaction that collects `digest` (see the module docstring)."""

    def fence(dialect: Dialect, cursor: Any) -> None:
        catchup(dialect, cursor)
        if catchup.marker.touched_after(position, digest):
            raise Kept("linked or referenced after the mark position")
        key = blob_key(digest)
        try:
            store.delete(key)
        except StorageError as exc:
            if store.exists(key):  # a StorageError here too propagates: nothing recorded
                raise StorageFailed(str(exc)) from exc

    return fence
