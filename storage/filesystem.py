"""The filesystem backend: everything under one root directory.

Atomicity: new objects are written to a temporary file in the same directory, fsynced, then
renamed over the key and the directory fsynced, so a crash leaves the old object or the new
one, never a torn file (DESIGN.md rule 3). A volatile write (`durable=False`: upload-session
state) keeps the temporary file and the rename, so every process sees the old object or the
whole new one, but skips the fsyncs: an OS crash may lose it, a process crash does not.

A durable writer starts the disk writes of what it has written every `WRITEBACK_BYTES`
(Linux `sync_file_range(SYNC_FILE_RANGE_WRITE)`: it queues them and returns), so the fsync at
the commit waits for the last few MiB instead of the whole object: for a 512 MiB blob that
fsync took 0.26–0.31 s, a fifth of the push, and 0.002–0.009 s with the writes started along
the way, for the same CPU (benchmarks/RESULTS.md, session 7). Where the call does not exist the
fsync does it all, as before.

A full disk or quota (ENOSPC, EDQUOT) anywhere a write needs room raises `OutOfSpace`.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from typing import BinaryIO

from dockyard.storage.base import BlobNotFound, BlobStore, OutOfSpace, StorageError, Writer

_NO_ROOM = (errno.ENOSPC, errno.EDQUOT)

WRITEBACK_BYTES = 8 << 20  # how much a durable writer writes between two starts of writeback
_SYNC_FILE_RANGE_WRITE = 2


def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc's `sync_file_range`, or None where there is none (not Linux, no glibc)."""
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_start_writeback = _sync_file_range()


def _out_of_space(exc: OSError, path: str) -> OSError | OutOfSpace:
    """The error to raise for `exc`: `OutOfSpace` for a full disk or quota, else `exc` itself."""
    return OutOfSpace(f"no space left on the device for {path}") if exc.errno in _NO_ROOM else exc


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _makedirs(directory: str, durable: bool = True) -> None:
    """`os.makedirs`, fsyncing the parent of each directory it creates: a renamed-in object
    survives a crash only if the directories leading to it do too (not when `durable` is False)."""
    if os.path.isdir(directory):
        return
    parent = os.path.dirname(directory)
    _makedirs(parent, durable)
    try:
        os.mkdir(directory)
    except FileExistsError:
        return
    if durable:
        _fsync_dir(parent)


class _FileWriter(Writer):
    def __init__(self, path: str, append: bool, durable: bool = True) -> None:
        self._path = path
        self._final: str | None = None
        self._durable = durable
        directory = os.path.dirname(path)
        try:
            _makedirs(directory, durable)
            if append:
                self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                self._size = os.fstat(self._fd).st_size
            else:
                self._fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
                os.fchmod(self._fd, 0o644)  # mkstemp makes 0600; committed objects look like appended ones
                self._final, self._path = path, tmp
                self._size = 0
        except OSError as exc:
            raise _out_of_space(exc, path) from None
        self._unstarted = self._size  # where the bytes whose writeback has not been started begin

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._fd, view)
                self._size += n
                view = view[n:]
        except OSError as exc:
            raise _out_of_space(exc, self._path) from None
        if self._durable and self._size - self._unstarted >= WRITEBACK_BYTES:
            self._start_writeback()

    def _start_writeback(self) -> None:
        """Queue the disk writes of the bytes written since the last call, without waiting."""
        global _start_writeback
        if _start_writeback is not None and _start_writeback(
                self._fd, self._unstarted, self._size - self._unstarted, _SYNC_FILE_RANGE_WRITE) != 0:
            if ctypes.get_errno() in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ESPIPE):
                _start_writeback = None  # not here (a filesystem or kernel without it): the fsync does it
        self._unstarted = self._size

    def commit(self) -> None:
        try:
            if self._durable:
                os.fsync(self._fd)  # delayed allocation: a full disk may show only here
            if self._final is not None:
                os.replace(self._path, self._final)
                if self._durable:
                    _fsync_dir(os.path.dirname(self._final))
                self._path, self._final = self._final, None
                # Further writes keep appending to the now-visible file.
                os.close(self._fd)
                self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            raise _out_of_space(exc, self._path) from None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._final is not None:  # never committed: the temp file goes
            try:
                os.unlink(self._path)
            except FileNotFoundError:
                pass
            self._final = None


class FilesystemStore(BlobStore):
    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        os.makedirs(self.root, exist_ok=True)

    def _path(self, key: str) -> str:
        return os.path.join(self.root, key)

    def _stat(self, key: str) -> int:
        try:
            st = os.stat(self._path(key))
        except (FileNotFoundError, NotADirectoryError):
            raise BlobNotFound(key) from None
        if not stat.S_ISREG(st.st_mode):  # a prefix is not an object
            raise BlobNotFound(key)
        return st.st_size

    def _open_read(self, key: str, offset: int) -> BinaryIO:
        try:
            f = open(self._path(key), "rb")  # noqa: SIM115 - returned to the caller
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise BlobNotFound(key) from None
        if offset:
            f.seek(offset)
        return f

    def _write_bytes(self, key: str, data: bytes) -> None:
        with self._writer(key, False) as w:
            w.write(data)
            w.commit()

    def _writer(self, key: str, append: bool) -> Writer:
        return _FileWriter(self._path(key), append)

    def _write_bytes_volatile(self, key: str, data: bytes) -> None:
        with self._volatile_writer(key, False) as w:
            w.write(data)
            w.commit()

    def _volatile_writer(self, key: str, append: bool) -> Writer:
        return _FileWriter(self._path(key), append, durable=False)

    def _move(self, source: str, destination: str) -> None:
        src, dst = self._path(source), self._path(destination)
        if not os.path.isfile(src):  # a missing object, or a prefix: only objects move
            raise BlobNotFound(source)
        try:
            _makedirs(os.path.dirname(dst))
            os.replace(src, dst)
        except FileNotFoundError:
            raise BlobNotFound(source) from None
        except OSError as exc:
            raise _out_of_space(exc, dst) from None
        _fsync_dir(os.path.dirname(dst))

    def _delete(self, key: str) -> None:
        path = self._path(key)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def _list(self, prefix: str) -> Iterator[str]:
        base = self._path(prefix)
        for directory, _dirs, files in os.walk(base):
            for name in files:
                if name.startswith(".tmp-"):
                    continue
                yield os.path.relpath(os.path.join(directory, name), self.root).replace(os.sep, "/")

    def ping(self) -> None:
        if not os.path.isdir(self.root) or not os.access(self.root, os.R_OK | os.W_OK | os.X_OK):
            raise StorageError(f"the storage root {self.root} is not a usable directory")

    def local_path(self, key: str) -> str | None:
        return self._path(self.check_key(key))
