"""The blob-store contract: what every backend must do, as one class of tests.

Modelled on CNCF Distribution's `registry/storage/driver/testsuites/testsuites.go`. A backend
passes by subclassing `BlobStoreContract` with a `store` fixture that gives a fresh, empty
store; nothing here may be overridden or skipped ("a backend is done when the contract passes
unchanged", STYLE.md section 4).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable

import pytest

from dockyard.storage.base import BlobNotFound, BlobStore, InvalidKey, InvalidOffset, StorageError

MiB = 1024 * 1024

INVALID_KEYS = [
    "", "/", "/abs", "/abs/key", "../x", "a/../b", "..", ".", "./a", "a/.", "a//b", "a/", "//a",
    "a b", "a\\b", "a\x00b", "tag:latest", "caf\u00e9", "a/b?c", "a\nb", "a\n", "a/b\n",
]

# From Distribution's TestValidPaths (without the leading slash our keys do not have).
VALID_KEYS = [
    "a", "2", "aa", "a.a", "0-9/abcdefg", "abcdefg/z.75", "abc/1.2.3.4.5-6_zyx/123.z/4",
    "docker/docker-registry", "123.abc", "abc./abc", ".abc", "a--b", "a-.b", "_.abc",
    "Docker/docker-registry", "Abc/Cba",
]


def random_bytes(n: int) -> bytes:
    return os.urandom(n)


def run_threads(count: int, target: Callable[[int], None]) -> None:
    """Run `target(i)` on `count` threads at once; re-raise the first failure."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        try:
            barrier.wait()
            target(i)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]


class BlobStoreContract:
    """Subclass with a `store` fixture returning a fresh, empty `BlobStore`."""

    @pytest.fixture
    def store(self) -> BlobStore:  # pragma: no cover - every backend overrides it
        raise NotImplementedError

    # -- missing objects -----------------------------------------------------------------------

    def test_missing_key_is_not_found(self, store: BlobStore) -> None:
        # Nothing was ever written under the key.
        key = "missing/object"

        # Stat, open and read all say BlobNotFound; exists says False.
        with pytest.raises(BlobNotFound):
            store.stat(key)
        assert store.exists(key) is False
        with pytest.raises(BlobNotFound):
            store.open_read(key)
        with pytest.raises(BlobNotFound):
            store.open_read(key, 64)
        with pytest.raises(BlobNotFound):
            store.read_bytes(key)

    def test_a_prefix_is_not_an_object(self, store: BlobStore) -> None:
        # An object is written two levels down.
        store.write_bytes("dir/sub/file", b"data")

        # The prefixes above it are not objects: not found, not readable.
        for prefix in ("dir", "dir/sub"):
            with pytest.raises(BlobNotFound):
                store.stat(prefix)
            assert store.exists(prefix) is False
            with pytest.raises(BlobNotFound):
                store.open_read(prefix)

        # Nor is anything under the object, as if it were a prefix.
        with pytest.raises(BlobNotFound):
            store.stat("dir/sub/file/below")

    def test_errors_are_storage_errors(self) -> None:
        # Callers may catch every backend failure as one type.
        assert issubclass(BlobNotFound, StorageError)
        assert issubclass(InvalidKey, StorageError)
        assert issubclass(InvalidOffset, StorageError)

    # -- whole objects -------------------------------------------------------------------------

    @pytest.mark.parametrize("contents", [
        b"a", "\u00df".encode(), b"\x80\x80\x80\x80", b"", random_bytes(32), random_bytes(MiB),
    ], ids=["one-byte", "unicode", "non-utf8", "empty", "32-bytes", "1MiB"])
    def test_write_bytes_then_read_bytes(self, store: BlobStore, contents: bytes) -> None:
        # Bytes are written under a key.
        store.write_bytes("blobs/sha256/ab/abcdef", contents)

        # They read back exactly, and stat gives their size.
        assert store.read_bytes("blobs/sha256/ab/abcdef") == contents
        assert store.stat("blobs/sha256/ab/abcdef") == len(contents)
        assert store.exists("blobs/sha256/ab/abcdef") is True

    @pytest.mark.parametrize("key", VALID_KEYS)
    def test_valid_keys_round_trip(self, store: BlobStore, key: str) -> None:
        # Every key of the documented grammar stores and reads back.
        store.write_bytes(key, key.encode())
        assert store.read_bytes(key) == key.encode()
        assert store.stat(key) == len(key)

    def test_overwrite_replaces_the_whole_object(self, store: BlobStore) -> None:
        # A large object is replaced by a small one, then by an empty one.
        store.write_bytes("obj", random_bytes(MiB))
        small = random_bytes(1024)
        store.write_bytes("obj", small)

        # Nothing of the old object is left past the end of the new one.
        assert store.read_bytes("obj") == small
        assert store.stat("obj") == 1024
        store.write_bytes("obj", b"")
        assert store.read_bytes("obj") == b""

    def test_overwrite_is_atomic(self, store: BlobStore) -> None:
        # Two versions of an object, the same size, distinguishable in every byte.
        size = 256 * 1024
        versions = (b"a" * size, b"b" * size)
        store.write_bytes("atomic", versions[0])

        # A reader opened before an overwrite still reads the old version whole.
        with store.open_read("atomic") as early:
            store.write_bytes("atomic", versions[1])
            assert early.read() == versions[0]
        assert store.read_bytes("atomic") == versions[1]

        # While one thread keeps overwriting, every read sees one version whole, never a mix
        # and never a missing or short object.
        stop = threading.Event()

        def overwrite() -> None:
            i = 0
            while not stop.is_set():
                store.write_bytes("atomic", versions[i % 2])
                i += 1

        writer = threading.Thread(target=overwrite)
        writer.start()
        try:
            for _ in range(100):
                assert store.read_bytes("atomic") in versions
        finally:
            stop.set()
            writer.join()

    # -- reading from an offset ----------------------------------------------------------------

    def test_open_read_with_offset(self, store: BlobStore) -> None:
        # Three chunks are stored as one object.
        chunk = 32
        c1, c2, c3 = random_bytes(chunk), random_bytes(chunk), random_bytes(chunk)
        store.write_bytes("offsets", c1 + c2 + c3)

        # Reading from 0, one chunk in and two chunks in gives the rest of the object.
        for offset, rest in ((0, c1 + c2 + c3), (chunk, c2 + c3), (2 * chunk, c3)):
            with store.open_read("offsets", offset) as f:
                assert f.read() == rest

        # One byte before the end gives that byte, then nothing.
        with store.open_read("offsets", 3 * chunk - 1) as f:
            assert f.read(chunk) == c3[-1:]
            assert f.read(chunk) == b""

        # At or past the end: a reader of no bytes.
        for offset in (3 * chunk, 3 * chunk + 1, 10 * chunk):
            with store.open_read("offsets", offset) as f:
                assert f.read() == b""

        # A negative offset is refused.
        with pytest.raises(InvalidOffset):
            store.open_read("offsets", -1)

    def test_reader_reads_in_pieces(self, store: BlobStore) -> None:
        # A reader is a file-like object: read(n) gives at most n bytes, in order.
        contents = random_bytes(100_000)
        store.write_bytes("pieces", contents)
        got = bytearray()
        with store.open_read("pieces") as f:
            while piece := f.read(4096):
                assert len(piece) <= 4096
                got += piece
        assert bytes(got) == contents

    # -- writers for new objects ---------------------------------------------------------------

    def test_new_object_is_invisible_until_commit(self, store: BlobStore) -> None:
        # A writer for a new key receives bytes.
        w = store.writer("uploads/new")
        w.write(b"hello ")
        w.write(memoryview(b"world"))
        assert w.size == 11

        # Until commit, the key does not exist and no listing shows it.
        assert store.exists("uploads/new") is False
        assert list(store.list("uploads")) == []

        # After commit it exists with every byte.
        w.commit()
        w.close()
        assert store.read_bytes("uploads/new") == b"hello world"
        assert sorted(store.list("uploads")) == ["uploads/new"]

    def test_replacing_writer_keeps_old_object_until_commit(self, store: BlobStore) -> None:
        # An object exists; a non-append writer for the same key starts replacing it.
        store.write_bytes("replace", b"old contents")
        w = store.writer("replace", append=False)
        assert w.size == 0
        w.write(b"new")

        # Readers see the old object until the commit, then only the new one.
        assert store.read_bytes("replace") == b"old contents"
        w.commit()
        w.close()
        assert store.read_bytes("replace") == b"new"

    def test_uncommitted_writer_close_leaves_nothing(self, store: BlobStore) -> None:
        # A writer writes but is closed without commit (the request failed).
        w = store.writer("abandoned/object")
        w.write(random_bytes(1000))
        w.close()
        w.close()  # closing twice is harmless

        # No object and nothing listed.
        assert store.exists("abandoned/object") is False
        assert list(store.list("abandoned")) == []

        # The same as a context manager that exits without commit; an existing object survives.
        store.write_bytes("kept", b"kept")
        with store.writer("kept") as w2:
            w2.write(b"discarded")
        assert store.read_bytes("kept") == b"kept"

    def test_writer_stays_usable_after_commit(self, store: BlobStore) -> None:
        # A commit makes what was written visible; writing then continues the same object.
        with store.writer("twice") as w:
            w.write(b"first,")
            w.commit()
            assert store.read_bytes("twice") == b"first,"
            w.write(b"second")
            w.commit()
            assert w.size == len(b"first,second")
        assert store.read_bytes("twice") == b"first,second"

    # -- append writers (upload sessions) ------------------------------------------------------

    @pytest.mark.parametrize("chunk", [32, 2 * MiB], ids=["small-chunks", "large-chunks"])
    def test_append_continues_existing_data(self, store: BlobStore, chunk: int) -> None:
        c1, c2, c3 = random_bytes(chunk), random_bytes(chunk), random_bytes(chunk)

        # A first request writes chunk one with a new-object writer.
        with store.writer("session/data") as w:
            w.write(c1)
            w.commit()
            assert w.size == chunk

        # A second request appends chunk two: its size starts at what is already there.
        with store.writer("session/data", append=True) as w:
            assert w.size == chunk
            w.write(c2)
            assert w.size == 2 * chunk
            w.commit()

        # A third appends the rest; the object holds every chunk, in order.
        with store.writer("session/data", append=True) as w:
            assert w.size == 2 * chunk
            w.write(c3)
            w.commit()
            assert w.size == 3 * chunk
        assert store.stat("session/data") == 3 * chunk
        assert store.read_bytes("session/data") == c1 + c2 + c3

    def test_append_to_missing_key_starts_an_object(self, store: BlobStore) -> None:
        # An append writer on a key with no object begins at size 0.
        with store.writer("fresh/data", append=True) as w:
            assert w.size == 0
            w.write(b"abc")
            w.commit()
        assert store.read_bytes("fresh/data") == b"abc"

        # Committing an append writer that wrote nothing leaves an empty object.
        with store.writer("empty/data", append=True) as w:
            w.commit()
        assert store.stat("empty/data") == 0

    def test_append_after_write_bytes(self, store: BlobStore) -> None:
        # Upload sessions start with an empty object, then append to it request by request.
        store.write_bytes("up/data", b"")
        for piece in (b"one", b"two", b"three"):
            with store.writer("up/data", append=True) as w:
                w.write(piece)
                w.commit()
        assert store.read_bytes("up/data") == b"onetwothree"

    def test_volatile_writes_read_like_durable_ones(self, store: BlobStore) -> None:
        # `durable=False` (upload-session state) only lets an OS crash lose the object: readers
        # see the same objects, and a durable append continues a volatile object.
        store.write_bytes("vol/1/info", b"{}", durable=False)
        store.write_bytes("vol/1/info", b'{"a": 1}', durable=False)
        with store.writer("vol/1/data", append=True, durable=False):
            pass
        with store.writer("vol/1/owner.x", append=True, durable=False) as w:
            w.commit()
        assert store.read_bytes("vol/1/info") == b'{"a": 1}'
        assert store.stat("vol/1/owner.x") == 0
        with store.writer("vol/1/data", append=True) as w:
            w.write(b"abc")
            w.commit()
        assert store.read_bytes("vol/1/data") == b"abc"
        assert sorted(store.list("vol")) == ["vol/1/data", "vol/1/info", "vol/1/owner.x"]

    # -- move ----------------------------------------------------------------------------------

    def test_move_replaces_destination(self, store: BlobStore) -> None:
        # An upload's data and an existing object at the destination.
        store.write_bytes("_uploads/1/data", b"new blob")
        store.write_bytes("blobs/sha256/aa/target", b"old")

        # Moving puts the source's bytes at the destination and removes the source.
        store.move("_uploads/1/data", "blobs/sha256/aa/target")
        assert store.read_bytes("blobs/sha256/aa/target") == b"new blob"
        assert store.exists("_uploads/1/data") is False

        # Moving to a key in prefixes that do not exist yet creates them.
        store.write_bytes("_uploads/2/data", b"second")
        store.move("_uploads/2/data", "deep/er/and/deeper/target")
        assert store.read_bytes("deep/er/and/deeper/target") == b"second"

    def test_move_of_missing_source(self, store: BlobStore) -> None:
        # A destination exists; the source does not.
        store.write_bytes("dest", b"untouched")

        # BlobNotFound, and the destination is left alone.
        with pytest.raises(BlobNotFound):
            store.move("no/such/source", "dest")
        assert store.read_bytes("dest") == b"untouched"

        # A prefix is not an object: moving it is BlobNotFound too, and nothing moves.
        store.write_bytes("prefix/child", b"child")
        with pytest.raises(BlobNotFound):
            store.move("prefix", "elsewhere")
        assert store.read_bytes("prefix/child") == b"child"
        assert list(store.list("elsewhere")) == []

    # -- delete --------------------------------------------------------------------------------

    def test_delete_object(self, store: BlobStore) -> None:
        # Two objects whose names share a beginning.
        store.write_bytes("files/a", b"a")
        store.write_bytes("files/ab", b"ab")

        # Deleting one removes exactly it.
        store.delete("files/a")
        assert store.exists("files/a") is False
        assert store.read_bytes("files/ab") == b"ab"

        # Deleting again, or deleting what never existed, is fine.
        store.delete("files/a")
        store.delete("never/was")

    def test_delete_prefix(self, store: BlobStore) -> None:
        # An upload session with two objects, and neighbours that must survive.
        store.write_bytes("_uploads/abc/data", b"data")
        store.write_bytes("_uploads/abc/info", b"info")
        store.write_bytes("_uploads/abc/deeper/still", b"x")
        store.write_bytes("_uploads/abcd/data", b"neighbour")
        store.write_bytes("_uploads/ab", b"neighbour")

        # Deleting the prefix removes everything under it, recursively.
        store.delete("_uploads/abc")
        assert list(store.list("_uploads/abc")) == []
        assert store.exists("_uploads/abc/data") is False

        # Keys that merely start with the same characters are kept.
        assert sorted(store.list("_uploads")) == ["_uploads/ab", "_uploads/abcd/data"]

        # Deleting the same prefix again is a no-op.
        store.delete("_uploads/abc")
        assert sorted(store.list("_uploads")) == ["_uploads/ab", "_uploads/abcd/data"]

    # -- list ----------------------------------------------------------------------------------

    def test_list_is_recursive_under_a_prefix(self, store: BlobStore) -> None:
        # Objects at several depths under `blobs`, and under a prefix that merely starts alike.
        keys = ["blobs/sha256/aa/1", "blobs/sha256/aa/2", "blobs/sha256/bb/3", "blobs/sha512/cc/4", "blobs/top"]
        for key in keys:
            store.write_bytes(key, key.encode())
        store.write_bytes("blobsandmore/x", b"x")
        store.write_bytes("blobs2/y", b"y")

        # Listing gives every key below the prefix, full keys, nothing else.
        assert sorted(store.list("blobs")) == sorted(keys)
        assert sorted(store.list("blobs/sha256")) == keys[:3]
        assert sorted(store.list("blobs/sha256/aa")) == keys[:2]

        # An absent prefix lists nothing; an object is not a prefix of itself.
        assert list(store.list("nothing/here")) == []
        assert list(store.list("blobs/top")) == []

        # Every listed key is readable.
        for key in store.list("blobs"):
            assert store.read_bytes(key) == key.encode()

    # -- keys ----------------------------------------------------------------------------------

    @pytest.mark.parametrize("key", INVALID_KEYS)
    def test_invalid_keys_are_refused_everywhere(self, store: BlobStore, key: str) -> None:
        # Every method taking a key refuses one outside the grammar, before touching storage.
        calls: list[Callable[[], object]] = [
            lambda: store.stat(key),
            lambda: store.exists(key),
            lambda: store.open_read(key),
            lambda: store.read_bytes(key),
            lambda: store.write_bytes(key, b"x"),
            lambda: store.writer(key),
            lambda: store.writer(key, append=True),
            lambda: store.move(key, "valid/destination"),
            lambda: store.move("valid/source", key),
            lambda: store.delete(key),
            lambda: list(store.list(key)),
        ]
        store.write_bytes("valid/source", b"kept")
        for call in calls:
            with pytest.raises(InvalidKey):
                call()

        # The refused move left its valid side alone.
        assert store.read_bytes("valid/source") == b"kept"
        assert store.exists("valid/destination") is False

    # -- size and concurrency ------------------------------------------------------------------

    def test_large_streamed_write(self, store: BlobStore) -> None:
        # 20 MiB are streamed through a writer in 1 MiB pieces, hashed on the way in.
        size, piece = 20 * MiB, MiB
        block = random_bytes(piece)
        written = hashlib.sha256()
        with store.writer("large/blob") as w:
            for i in range(size // piece):
                data = bytes([i]) + block[1:]  # every piece differs
                written.update(data)
                w.write(data)
            w.commit()
            assert w.size == size

        # Its size is right and it reads back, streamed, to the same hash.
        assert store.stat("large/blob") == size
        read = hashlib.sha256()
        with store.open_read("large/blob") as f:
            while chunk := f.read(MiB):
                read.update(chunk)
        assert read.hexdigest() == written.hexdigest()

    def test_large_append_in_small_pieces(self, store: BlobStore) -> None:
        # An upload session receives 20 MiB as 64 KiB pieces across several appending writers
        # (one a request); appending must cost the piece, not the object so far.
        size, piece = 20 * MiB, 64 * 1024
        block = random_bytes(piece)
        written = hashlib.sha256()
        store.write_bytes("session/large", b"")
        pieces_per_request = 64
        for request in range(size // (piece * pieces_per_request)):
            with store.writer("session/large", append=True) as w:
                assert w.size == request * piece * pieces_per_request
                for _ in range(pieces_per_request):
                    written.update(block)
                    w.write(block)
                w.commit()
        assert store.stat("session/large") == size
        with store.open_read("session/large", size - piece) as f:
            assert f.read() == block
        assert hashlib.sha256(store.read_bytes("session/large")).hexdigest() == written.hexdigest()

    def test_concurrent_writers_to_different_keys(self, store: BlobStore) -> None:
        # Eight threads at once each write objects, whole and streamed, into the same prefixes
        # (so they race to create the same directories or containers).
        threads = 8
        contents = {i: random_bytes(100_000 + i) for i in range(threads)}

        def work(i: int) -> None:
            store.write_bytes(f"shared/whole/{i}", contents[i])
            with store.writer(f"shared/streamed/deep/{i}") as w:
                for start in range(0, len(contents[i]), 8192):
                    w.write(contents[i][start:start + 8192])
                w.commit()
            with store.writer(f"shared/appended/{i}", append=True) as w:
                w.write(contents[i])
                w.commit()

        run_threads(threads, work)

        # Every object is there, each with its own bytes.
        for i in range(threads):
            for key in (f"shared/whole/{i}", f"shared/streamed/deep/{i}", f"shared/appended/{i}"):
                assert store.read_bytes(key) == contents[i]
        assert len(list(store.list("shared"))) == 3 * threads
