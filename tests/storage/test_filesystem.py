"""The filesystem backend passes the contract, and keeps its own promises: temporary files
never outlive a commit, `local_path` names the bytes, directories are made durable."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dockyard.storage import filesystem, open_store
from dockyard.storage.base import BlobStore
from dockyard.storage.filesystem import FilesystemStore
from tests.storage.contract import BlobStoreContract


class TestFilesystemStore(BlobStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> BlobStore:
        return FilesystemStore(str(tmp_path / "root"))


def all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_no_temporary_files_remain(tmp_path: Path) -> None:
    store = FilesystemStore(str(tmp_path))

    # While a new object is being written, its bytes sit in a hidden temporary file.
    w = store.writer("blobs/sha256/ab/abc")
    w.write(b"in progress")
    assert [f for f in all_files(tmp_path) if ".tmp-" in f], "the writer writes to a temporary file"
    assert list(store.list("blobs")) == []

    # Commit renames it into place: only the object is left.
    w.commit()
    w.close()
    store.write_bytes("blobs/sha256/ab/def", b"whole")
    assert all_files(tmp_path) == ["blobs/sha256/ab/abc", "blobs/sha256/ab/def"]

    # An abandoned writer removes its temporary file.
    with store.writer("blobs/sha256/ab/ghi") as abandoned:
        abandoned.write(b"never committed")
    assert all_files(tmp_path) == ["blobs/sha256/ab/abc", "blobs/sha256/ab/def"]


def test_local_path_points_at_the_bytes(tmp_path: Path) -> None:
    store = FilesystemStore(str(tmp_path))
    store.write_bytes("blobs/sha256/cd/cdef", b"pull me directly")

    # The API may send the file itself: the path holds exactly the object's bytes.
    path = store.local_path("blobs/sha256/cd/cdef")
    assert path is not None and os.path.isabs(path)
    assert Path(path).read_bytes() == b"pull me directly"
    assert Path(path).parent.parent.parent.parent == tmp_path

    # There is no redirect: clients fetch through the registry.
    assert store.redirect_url("blobs/sha256/cd/cdef") is None


def test_committed_and_appended_objects_have_the_same_mode(tmp_path: Path) -> None:
    store = FilesystemStore(str(tmp_path))
    store.write_bytes("whole", b"x")
    with store.writer("appended", append=True) as w:
        w.write(b"x")
        w.commit()

    # Both are readable by the group and others the same way (no 0600 temp-file leftovers).
    whole = stat.S_IMODE(os.stat(tmp_path / "whole").st_mode)
    appended = stat.S_IMODE(os.stat(tmp_path / "appended").st_mode)
    assert whole == appended
    assert whole & 0o600 == 0o600


def test_new_directories_are_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FilesystemStore(str(tmp_path))
    synced: list[str] = []
    real = filesystem._fsync_dir

    def spy(path: str) -> None:
        synced.append(os.path.relpath(path, tmp_path))
        real(path)

    monkeypatch.setattr(filesystem, "_fsync_dir", spy)

    # Writing into three new directories fsyncs the parent of each one it made, and the
    # directory the object was renamed into: a crash cannot lose the path to a committed blob.
    store.write_bytes("blobs/sha256/ef/efgh", b"durable")
    assert synced == [".", "blobs", "blobs/sha256", "blobs/sha256/ef"]

    # A second object in the same directory fsyncs only that directory.
    synced.clear()
    store.write_bytes("blobs/sha256/ef/ijkl", b"durable too")
    assert synced == ["blobs/sha256/ef"]

    # A move into new directories does the same.
    synced.clear()
    store.move("blobs/sha256/ef/ijkl", "moved/here/ijkl")
    assert synced == [".", "moved", "moved/here"]


def test_file_url_opens_a_filesystem_store(tmp_path: Path) -> None:
    # `file:///path` and a bare path both select this backend, rooted there.
    for url in (f"file://{tmp_path}/a", str(tmp_path / "b")):
        store = open_store(url)
        assert isinstance(store, FilesystemStore)
        store.write_bytes("k", b"v")
    assert (tmp_path / "a" / "k").read_bytes() == b"v"
    assert (tmp_path / "b" / "k").read_bytes() == b"v"


@pytest.mark.parametrize("where", ["/proc/no-such/blobs", "file"], ids=["cannot-create", "a-file"])
def test_an_unusable_path_is_a_one_line_error(tmp_path: Path, where: str) -> None:
    # A directory that cannot be made (under /proc, or where a file is) refuses like the object
    # stores do: one line naming the path and the reason, never an OSError's traceback.
    from tests.object_stores import one_line_error

    (tmp_path / "file").write_bytes(b"not a directory")
    path = where if where.startswith("/") else str(tmp_path / where)
    message = one_line_error(f"file://{path}", {})
    assert path in message and "file:///PATH" in message


def test_a_durable_writer_starts_the_disk_writes_as_it_goes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[tuple[int, int]] = []
    real = filesystem._start_writeback

    def spy(fd: int, offset: int, length: int, flags: int) -> int:
        started.append((offset, length))
        return real(fd, offset, length, flags) if real is not None else 0

    monkeypatch.setattr(filesystem, "_start_writeback", spy)
    monkeypatch.setattr(filesystem, "WRITEBACK_BYTES", 1000)
    store = FilesystemStore(str(tmp_path))

    # Every WRITEBACK_BYTES written, the writes of what came since the last start are queued,
    # so the fsync at the commit has only the rest to wait for.
    w = store.writer("_uploads/u/data", append=True)
    for _ in range(5):
        w.write(b"x" * 600)
    w.commit()
    w.close()
    assert started == [(0, 1200), (1200, 1200)]

    # Appending to an object that has bytes starts from its end.
    started.clear()
    w = store.writer("_uploads/u/data", append=True)
    w.write(b"y" * 1000)
    w.commit()
    w.close()
    assert started == [(3000, 1000)]
    assert (tmp_path / "_uploads/u/data").read_bytes() == b"x" * 3000 + b"y" * 1000

    # A volatile writer (upload-session state) is never fsynced, so starts none either.
    started.clear()
    w = store.writer("_uploads/u/state", append=True, durable=False)
    w.write(b"z" * 5000)
    w.close()
    assert started == []
