"""Blob upload sessions: start, append chunks, finish with a verified digest, cancel.

Sessions live in blob storage (`_uploads/<id>/data` and `.../info`), not in the event log and
not in process memory, so a PATCH may land on any process or replica of the registry. Each
process keeps the running hash of the sessions it served; when a chunk arrives after another
process appended, the hash is brought forward by reading only the bytes appended since this
process last saw the session (the data is append-only, so its hash state still holds for the
bytes before). A process that never saw the session reads it once from the start.

Only a finished, verified upload becomes an event (`BlobLink.Linked`), after the bytes are in
their final content-addressed place (DESIGN.md rule 3).

Durability: opening a session writes its state (data, owner, info) without an fsync
(`durable=False`): it is visible to every process at once and survives a process crash, but an
OS crash or power loss may lose a session, or leave it without a readable info; either answers
BLOB_UPLOAD_UNKNOWN and the client starts that upload again, as after the purge. An open
session is not an acknowledged blob (DESIGN.md rule 3): a PATCH still fsyncs the bytes it
appended, and `finish` moves them into their blob key and fsyncs that directory before the
`Linked` event, so a blob answered 201 survives any crash as before.

A full disk (`OutOfSpace` from storage) discards the session it happened in, whose partial data
would otherwise hold the space until the purge, and raises `StorageFull`. Each user (an
anonymous client: each address) may hold `max_sessions_per_owner` open sessions; an empty
`_uploads/<id>/owner.<name>` object names the owner, so counting needs a listing, no reads.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from dockyard.commands.registry import Registry
from dockyard.domain.actor import ANONYMOUS_NAME, current_actor
from dockyard.domain.digest import Digest
from dockyard.domain.errors import (
    BlobUploadUnknown,
    DigestInvalid,
    RangeInvalid,
    SizeInvalid,
    StorageFull,
    TooManyRequests,
)
from dockyard.domain.names import check_repository_name
from dockyard.projections.registry_queries import RegistryQueries
from dockyard.storage import BlobNotFound, BlobStore, OutOfSpace, Writer, blob_key

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_REHASH_CHUNK = 1 << 20


def _data_key(upload_id: str) -> str:
    return f"_uploads/{upload_id}/data"


def _info_key(upload_id: str) -> str:
    return f"_uploads/{upload_id}/info"


def _owner_marker(owner: str) -> str:
    return f"owner.{owner}"


def _owner() -> str:
    """Whom a new session counts against: the acting user, or an anonymous client's address."""
    actor = current_actor.get()
    if actor.name == ANONYMOUS_NAME:
        return "anonymous-" + re.sub(r"[^A-Za-z0-9.-]", "-", actor.address)
    return actor.name


def _full(upload_id: str) -> StorageFull:
    return StorageFull("storage is full: the upload was discarded; retry when space has been freed",
                       {"upload": upload_id})


class Append:
    """One request's worth of appending to a session. Blocking; used from one thread.

    `write` hashes and appends; `close` makes the bytes durable and remembers the hash state.
    """

    def __init__(self, sessions: UploadSessions, upload_id: str, writer: Writer, hasher: Any) -> None:
        self._sessions, self._id, self._writer, self._hasher = sessions, upload_id, writer, hasher

    @property
    def offset(self) -> int:
        return self._writer.size

    def write(self, data: bytes | memoryview) -> None:
        self._hasher.update(data)
        try:
            self._writer.write(data)
        except OutOfSpace:
            self._sessions._discard(self._id, self._writer)
            raise _full(self._id) from None

    def close(self) -> int:
        """Make everything appended durable; return the new session size."""
        try:
            self._writer.commit()
            size = self._writer.size
            self._sessions._remember(self._id, size, self._hasher)
            return size
        except OutOfSpace:
            self._sessions._discard(self._id, self._writer)
            raise _full(self._id) from None
        finally:
            self._writer.close()

    def abort(self) -> None:
        """The request failed mid-way: forget the hash state (it may not match the data)."""
        self._sessions._forget(self._id)
        self._writer.close()


@dataclass(frozen=True, slots=True)
class UploadStatus:
    upload_id: str
    repository: str
    size: int


class UploadSessions:
    """`clock` (seconds since the epoch) dates sessions and ages them for the purge."""

    def __init__(self, store: BlobStore, registry: Registry, registry_view: RegistryQueries,
                 clock: Callable[[], float] = time.time, max_sessions_per_owner: int = 1000) -> None:
        self.store = store
        self.registry = registry
        self.registry_view = registry_view  # a cross-repository mount reads the source's blob links
        self.clock = clock
        self.max_sessions_per_owner = max_sessions_per_owner
        self._hashes: dict[str, tuple[int, Any]] = {}
        self._lock = threading.Lock()

    # -- session state -------------------------------------------------------------------------

    def start(self, repository: str) -> str:
        """Open a new session for `repository` for the current actor; returns its id.

        `NameUnknown` when the push could not create the repository (`Registry.check_may_push`),
        before any byte is sent; `TooManyRequests` when the actor already holds
        `max_sessions_per_owner` sessions (two starts racing may both pass at the limit);
        `StorageFull` when there is no room for one.
        """
        check_repository_name(repository)
        self.registry.check_may_push(repository)
        owner = _owner()
        marker = _owner_marker(owner)
        held = sum(1 for key in self.store.list("_uploads") if key.endswith("/" + marker))
        if held >= self.max_sessions_per_owner:
            raise TooManyRequests(
                f"{owner} already has {held} open upload sessions, the most one user may hold; finish or cancel "
                "some (DELETE /v2/<name>/blobs/uploads/<uuid>), or wait until abandoned ones are purged",
                {"limit": self.max_sessions_per_owner})
        upload_id = str(uuid.uuid4())
        info = {"repository": repository, "started_at": datetime.fromtimestamp(self.clock(), UTC).isoformat(),
                "owner": owner}
        # The empty data and owner objects first, then the info (a reader that finds the info
        # finds the data). None is fsynced: see "Durability" above.
        try:
            self.store.writer(_data_key(upload_id), append=True, durable=False).close()
            self.store.writer(f"_uploads/{upload_id}/{marker}", append=True, durable=False).close()
            self.store.write_bytes(_info_key(upload_id), orjson.dumps(info), durable=False)
        except OutOfSpace:
            self.store.delete(f"_uploads/{upload_id}")
            raise _full(upload_id) from None
        return upload_id

    def status(self, repository: str, upload_id: str) -> UploadStatus:
        """The session's size; `BlobUploadUnknown` if there is no such session for `repository`."""
        if not _UUID.fullmatch(upload_id):
            raise BlobUploadUnknown(detail={"upload": upload_id})
        try:
            info = orjson.loads(self.store.read_bytes(_info_key(upload_id)))
            size = self.store.stat(_data_key(upload_id))
        except (BlobNotFound, ValueError):  # ValueError: an info an OS crash left empty or torn
            raise BlobUploadUnknown(detail={"upload": upload_id}) from None
        if not isinstance(info, dict) or info.get("repository") != repository:
            raise BlobUploadUnknown(detail={"upload": upload_id})
        return UploadStatus(upload_id, repository, size)

    def cancel(self, repository: str, upload_id: str) -> None:
        self.status(repository, upload_id)
        self._forget(upload_id)
        self.store.delete(f"_uploads/{upload_id}")

    def session_ids(self) -> list[str]:
        """The ids of every session in storage, sorted (for `dockyard.gc.upload_purge`)."""
        return sorted({key.split("/")[1] for key in self.store.list("_uploads")})

    def started_at(self, upload_id: str) -> datetime | None:
        """When the session started; None when its info cannot be read: it is being started
        right now (its data is written before its info), or a crash left an empty data object."""
        try:
            return datetime.fromisoformat(orjson.loads(self.store.read_bytes(_info_key(upload_id)))["started_at"])
        except (BlobNotFound, ValueError, KeyError, TypeError):
            return None

    def discard(self, upload_id: str) -> None:
        """Delete the session and whatever it holds, in any repository. Idempotent."""
        self._forget(upload_id)
        self.store.delete(f"_uploads/{upload_id}")

    # -- appending -----------------------------------------------------------------------------

    def append(self, repository: str, upload_id: str, start: int | None = None) -> Append:
        """Begin appending to a session. `start`, from a `Content-Range`, must equal its size."""
        self.status(repository, upload_id)
        # The open writer's size is the offset: what another process appended before it opened counts.
        writer = self.store.writer(_data_key(upload_id), append=True)
        try:
            if start is not None and start != writer.size:
                raise RangeInvalid(detail={"expected": writer.size, "got": start})
            hasher = self._hash_state(upload_id, writer.size)
        except BaseException:
            writer.close()
            raise
        return Append(self, upload_id, writer, hasher)

    def _hash_state(self, upload_id: str, size: int) -> Any:
        with self._lock:
            cached = self._hashes.get(upload_id)
        if cached is not None and cached[0] == size:
            return cached[1].copy()
        if cached is not None and cached[0] < size:
            # Another process appended: hash only what it added.
            done, hasher = cached[0], cached[1].copy()
        else:
            # This process never saw the session (or restarted): hash it from the start.
            done, hasher = 0, hashlib.sha256()
        with self.store.open_read(_data_key(upload_id), done) as f:
            remaining = size - done
            while remaining > 0:
                chunk = f.read(min(_REHASH_CHUNK, remaining))
                if not chunk:
                    break
                hasher.update(chunk)
                remaining -= len(chunk)
        return hasher

    def _remember(self, upload_id: str, size: int, hasher: Any) -> None:
        with self._lock:
            self._hashes[upload_id] = (size, hasher.copy())

    def _forget(self, upload_id: str) -> None:
        with self._lock:
            self._hashes.pop(upload_id, None)

    def _discard(self, upload_id: str, writer: Writer | None = None) -> None:
        """Drop a session and all its data (after a full disk: that space is needed)."""
        if writer is not None:
            writer.close()
        self._forget(upload_id)
        self.store.delete(f"_uploads/{upload_id}")

    # -- finishing -----------------------------------------------------------------------------

    def finish(self, repository: str, upload_id: str, digest: str, expected_size: int | None = None) -> int:
        """Verify the session's bytes against `digest`, move them into place, link the blob.

        On a mismatch the session is discarded (nothing half-stored) and `DigestInvalid`
        raised. Returns the blob's size.
        """
        wanted = Digest.parse(digest)
        status = self.status(repository, upload_id)
        if expected_size is not None and expected_size != status.size:
            self.cancel(repository, upload_id)
            raise SizeInvalid(detail={"expected": expected_size, "size": status.size})
        if wanted.algorithm == "sha256":
            actual = "sha256:" + self._hash_state(upload_id, status.size).hexdigest()
        else:
            actual = str(self._rehash(upload_id, wanted))
        if actual != str(wanted):
            self.cancel(repository, upload_id)
            raise DigestInvalid(detail={"expected": str(wanted), "actual": actual})
        try:
            self.store.move(_data_key(upload_id), blob_key(str(wanted)))
        except OutOfSpace:
            self._discard(upload_id)
            raise _full(upload_id) from None
        self.store.delete(f"_uploads/{upload_id}")
        self._forget(upload_id)
        key = blob_key(str(wanted))
        self.registry.link_blob(repository, str(wanted), status.size, "upload", lambda: self.store.exists(key))
        return status.size

    def _rehash(self, upload_id: str, wanted: Digest) -> Digest:
        hasher = wanted.hasher()
        with self.store.open_read(_data_key(upload_id)) as f:
            while chunk := f.read(_REHASH_CHUNK):
                hasher.update(chunk)
        return Digest(wanted.algorithm, hasher.hexdigest())

    # -- mounting ------------------------------------------------------------------------------

    def mount(self, repository: str, digest: str, source: str) -> int | None:
        """Link a blob already in `source` into `repository`; its size, or None if unavailable.

        The caller has checked that it may read `source`.
        """
        check_repository_name(repository)
        size = self.registry_view.blob_size(source, digest)
        if size is None or not self.store.exists(blob_key(digest)):
            return None
        key = blob_key(digest)
        try:
            self.registry.link_blob(repository, digest, size, f"mount:{source}", lambda: self.store.exists(key))
        except BlobUploadUnknown:  # swept meanwhile: the client uploads it instead
            return None
        return size
