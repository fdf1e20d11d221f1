"""Upload sessions on a shared store: a PATCH landing on another process re-reads only what the
other processes appended since this one last saw the session (issue 11, item 5)."""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from dockyard.bootstrap import registry_on, views
from dockyard.commands.identity import Identity
from dockyard.commands.persistence import event_store_env
from dockyard.commands.registry import Registry
from dockyard.commands.uploads import UploadSessions
from dockyard.domain.errors import BlobUploadUnknown
from dockyard.storage import blob_key
from dockyard.storage.filesystem import FilesystemStore
from dockyard.storage.memory import MemoryStore
from tests.on_registry import registry_view


class CountingStore(MemoryStore):
    """The memory store, counting the bytes of upload data read back out of it."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes_read = 0

    def _open_read(self, key: str, offset: int) -> BinaryIO:
        inner = super()._open_read(key, offset)
        store = self

        class Counting(io.BufferedIOBase):
            def read(self, n: int | None = -1) -> bytes:
                data = inner.read(n)
                if key.endswith("/data"):
                    store.bytes_read += len(data)
                return data

        return Counting()  # type: ignore[return-value]


@pytest.fixture
def registries(tmp_path: Path) -> Iterator[list[Registry]]:
    """Three processes on one (in-memory SQLite) database."""
    env = event_store_env(str(tmp_path), None)
    env["SQLITE_DBNAME"] = f"file:dockyard-{uuid.uuid4().hex}?mode=memory&cache=shared"
    apps = [registry_on(env) for _ in range(3)]
    Identity(apps[0], *views(apps[0])).create_organization("lib", "admin")  # a push needs an account's namespace
    yield apps
    for app in apps:
        app.close()


def test_switching_processes_rereads_only_what_others_appended(registries: list[Registry]) -> None:
    store = CountingStore()
    a, b, c = (UploadSessions(store, r, registry_view(r)) for r in registries)
    upload_id = a.start("lib/app")
    piece = b"0123456789abcdef" * 4096  # 64 KiB
    data = b""

    def patch(sessions: UploadSessions) -> int:
        """One PATCH on `sessions`; the bytes it read back from storage."""
        nonlocal data
        before = store.bytes_read
        append = sessions.append("lib/app", upload_id, start=len(data))
        append.write(piece)
        append.close()
        data += piece
        return store.bytes_read - before

    # Two PATCHes on A: nothing is read back.
    assert patch(a) == 0 and patch(a) == 0

    # B has never seen the session: it reads the 128 KiB received so far, once.
    assert patch(b) == 2 * len(piece)
    assert patch(b) == 0

    # Back on A: it reads only B's two pieces, not the whole upload again.
    assert patch(a) == 2 * len(piece)

    # C joins (reads everything once); then B, A and C alternate, each reading what the
    # others appended since it last served a PATCH.
    assert patch(c) == 5 * len(piece)
    assert patch(b) == 2 * len(piece)   # A's and C's pieces
    assert patch(a) == 2 * len(piece)   # C's and B's
    assert patch(c) == 2 * len(piece)   # B's and A's

    # Finishing on any process verifies the digest over every byte.
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert b.finish("lib/app", upload_id, digest) == len(data)
    assert store.read_bytes(blob_key(digest)) == data


def test_opening_a_session_waits_for_no_disk_but_a_finished_blob_does(
        registries: list[Registry], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An open session is not an acknowledged blob: starting one fsyncs nothing (an OS crash may
    # lose it; the client starts again). A PATCH fsyncs its bytes, and finishing fsyncs the
    # blob's directory before the Linked event, as before (DESIGN.md rule 3).
    store = FilesystemStore(str(tmp_path / "blobs"))
    a, b = (UploadSessions(store, r, registry_view(r)) for r in registries[:2])
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.path.relpath(os.readlink(f"/proc/self/fd/{fd}"), store.root))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    upload_id = a.start("lib/app")
    assert synced == []
    assert b.status("lib/app", upload_id).size == 0  # another process sees it at once

    append = b.append("lib/app", upload_id, start=0)
    append.write(b"layer")
    append.close()
    assert synced == [f"_uploads/{upload_id}/data"]

    synced.clear()
    digest = "sha256:" + hashlib.sha256(b"layer").hexdigest()
    assert a.finish("lib/app", upload_id, digest) == 5
    assert os.path.dirname(blob_key(digest)) in synced


def test_a_session_whose_info_a_crash_left_torn_is_unknown(registries: list[Registry], tmp_path: Path) -> None:
    store = FilesystemStore(str(tmp_path / "blobs"))
    sessions = UploadSessions(store, registries[0], registry_view(registries[0]))
    for torn in (b"", b'{"repository": "lib/ap', b"[]"):
        upload_id = sessions.start("lib/app")
        Path(store.root, "_uploads", upload_id, "info").write_bytes(torn)
        with pytest.raises(BlobUploadUnknown):
            sessions.status("lib/app", upload_id)
        assert sessions.started_at(upload_id) is None
