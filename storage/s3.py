"""The S3 backend, through the `minio` SDK: AWS S3, MinIO, Ceph RGW, moto.

URL: `s3://BUCKET[/PREFIX]?endpoint=http://host:port&region=R&redirect=true`, credentials from
`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`). `open_s3` checks the
bucket once, so a wrong URL is one clear `StorageConfigError` at start.

How the contract maps onto S3, which has neither rename nor append:

- A new object is written as a multipart upload of `PART_SIZE` parts (one buffer per writer:
  constant memory) completed at `commit()`; a small one is a single PUT. Before completion
  nothing exists under the key (DESIGN.md rule 3); `close()` without a commit aborts it. A
  crash leaves an incomplete multipart upload, invisible and reclaimed by the bucket's
  `AbortIncompleteMultipartUpload` lifecycle rule.
- An appendable object (upload sessions) is its base object, marked with the metadata
  `x-amz-meta-dockyard-append`, plus *segment* objects `KEY~<offset as 16 hex digits>`, one
  per commit of an append writer. `~` is outside the key grammar, so segments never collide
  with keys and `list` leaves them out. Appending costs the bytes appended, never a copy of
  the object so far; `stat` and `open_read` of a marked object add up its segments.
- `move` copies on the server (CopyObject, or a multipart UploadPartCopy of the segments,
  reading back only pieces under S3's 5 MiB minimum part size) and deletes the source.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, BinaryIO
from urllib.parse import parse_qs, quote, urlparse

import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.datatypes import Part
from minio.deleteobjects import DeleteObject
from minio.error import MinioException, S3Error
from urllib3.util import Retry, Timeout

from dockyard.storage.base import BlobNotFound, BlobStore, StorageConfigError, StorageError, Writer

MiB = 1 << 20
MIN_PART = 5 * MiB  # S3: every part but the last is at least this
MAX_COPY_PART = 5 * 1024 * MiB  # S3: the largest object CopyObject or one UploadPartCopy takes
PART_SIZE = 8 * MiB
APPEND_META = "x-amz-meta-dockyard-append"
SEGMENT = "~"
_NOT_FOUND = {"NoSuchKey", "NoSuchObject", "ResourceNotFound"}


def part_size(part_number: int) -> int:
    """Parts grow by `PART_SIZE` every 1,000: S3's 10,000 parts then hold ~430 GiB."""
    return PART_SIZE * (1 + (part_number - 1) // 1000)


def _segment_name(name: str, offset: int) -> str:
    return f"{name}{SEGMENT}{offset:016x}"


@dataclass(frozen=True, slots=True)
class _Piece:
    name: str  # S3 object name
    size: int


class _ChainReader(io.RawIOBase):
    """Streams pieces of objects one after another, one GET at a time (the first from `offset`)."""

    def __init__(self, store: S3Store, pieces: list[_Piece], offset: int,
                 first: urllib3.BaseHTTPResponse | None = None) -> None:
        """Read `pieces` from `offset`, or just `first`, an open GET response."""
        self._store, self._response = store, first
        self._todo: list[tuple[str, int, int]] = []
        for piece in pieces:
            if offset >= piece.size:
                offset -= piece.size
                continue
            self._todo.append((piece.name, offset, piece.size - offset))
            offset = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        """`size` bytes, fewer only at the end: each response returns all it is asked for
        (urllib3 2), so no buffering layer (and its copy) sits on the pull path."""
        if size is None or size < 0:
            return self.readall()
        chunks, want = [], size
        while want > 0:
            if self._response is None:
                if not self._todo:
                    break
                name, offset, length = self._todo.pop(0)
                self._response = self._store._get(name, offset, length)
            data = self._response.read(want)
            if not data:
                self._release()
                continue
            chunks.append(data)
            want -= len(data)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def readinto(self, buffer: Any) -> int:
        while True:
            if self._response is None:
                if not self._todo:
                    return 0
                name, offset, length = self._todo.pop(0)
                self._response = self._store._get(name, offset, length)
            n = self._response.readinto(buffer)
            if n:
                return n
            self._release()

    def _release(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            response.close()
            response.release_conn()

    def close(self) -> None:
        self._release()
        super().close()


class _S3Writer(Writer):
    """Buffers one part; uploads parts as they fill; completes on `commit`.

    The first run of a non-append writer targets the key itself; every later run (an append
    writer, or any writer after its first commit) becomes a segment of the marked key.
    """

    def __init__(self, store: S3Store, key: str, append: bool) -> None:
        self._store, self._key = store, key
        self._name = store._name(key)
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[Part] = []
        self._segments = append
        self._marked = False
        if append:
            try:
                self._size, self._marked = store._composite_size(self._name)
            except BlobNotFound:  # like O_CREAT: an append writer starts the object
                store._put(self._name, b"", marked=True)
                self._size, self._marked = 0, True
        else:
            self._size = 0
        self._run_start = self._size

    @property
    def size(self) -> int:
        return self._size

    def _target(self) -> str:
        return _segment_name(self._name, self._run_start) if self._segments else self._name

    def write(self, data: bytes | memoryview) -> None:
        self._buffer += data
        self._size += len(data) if isinstance(data, bytes) else data.nbytes
        while len(self._buffer) >= part_size(len(self._parts) + 1):
            n = part_size(len(self._parts) + 1)
            self._upload_part(bytes(self._buffer[:n]))
            del self._buffer[:n]

    def _upload_part(self, data: bytes) -> None:
        client, bucket = self._store.client, self._store.bucket
        try:
            if self._upload_id is None:
                self._upload_id = client._create_multipart_upload(bucket, self._target(), {})
            number = len(self._parts) + 1
            etag = client._upload_part(bucket, self._target(), data, None, self._upload_id, number)
        except MinioException as exc:
            raise self._store._error(self._key, exc) from None
        self._parts.append(Part(number, etag))

    def commit(self) -> None:
        if self._segments and self._size == self._run_start:
            return  # nothing new: the object already holds every byte
        if self._segments and not self._marked:
            self._store._mark(self._name)
            self._marked = True
        data = bytes(self._buffer)
        if self._upload_id is None:
            self._store._put(self._target(), data)
        else:
            if data:
                self._upload_part(data)
            try:
                self._store.client._complete_multipart_upload(
                    self._store.bucket, self._target(), self._upload_id, self._parts)
            except MinioException as exc:
                raise self._store._error(self._key, exc) from None
        self._buffer.clear()
        self._upload_id, self._parts = None, []
        # Further writes continue the now-visible object as a segment.
        self._segments, self._run_start = True, self._size

    def close(self) -> None:
        self._buffer = bytearray()
        if self._upload_id is not None:  # never committed: the parts go
            upload_id, self._upload_id = self._upload_id, None
            try:
                self._store.client._abort_multipart_upload(self._store.bucket, self._target(), upload_id)
            except MinioException:
                pass  # the bucket's lifecycle rule reclaims it


class S3Store(BlobStore):
    def __init__(self, client: Minio, bucket: str, prefix: str = "", *, redirect: bool = False,
                 redirect_expiry: timedelta = timedelta(minutes=20)) -> None:
        self.client, self.bucket = client, bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.redirect, self.redirect_expiry = redirect, redirect_expiry

    # -- helpers ---------------------------------------------------------------------------------

    def _name(self, key: str) -> str:
        return self.prefix + key

    def _error(self, key: str, exc: MinioException) -> StorageError:
        if isinstance(exc, S3Error) and exc.code in _NOT_FOUND:
            return BlobNotFound(key)
        return StorageError(f"S3 {self.bucket}/{self._name(key)}: {exc}")

    def _get(self, name: str, offset: int, length: int = 0) -> urllib3.BaseHTTPResponse:
        try:
            return self.client.get_object(self.bucket, name, offset=offset, length=length)
        except MinioException as exc:
            raise self._error(name[len(self.prefix):], exc) from None

    def _put(self, name: str, data: bytes, *, marked: bool = False) -> None:
        try:
            self.client.put_object(self.bucket, name, io.BytesIO(data), len(data),
                                   metadata={APPEND_META: "1"} if marked else None)
        except MinioException as exc:
            raise self._error(name[len(self.prefix):], exc) from None

    def _segments(self, name: str) -> list[_Piece]:
        try:
            found = [_Piece(o.object_name, o.size or 0) for o in
                     self.client.list_objects(self.bucket, prefix=name + SEGMENT, recursive=True)]
        except MinioException as exc:
            raise self._error(name[len(self.prefix):], exc) from None
        return sorted(found, key=lambda p: p.name)

    def _head(self, name: str) -> tuple[int, bool]:
        try:
            info = self.client.stat_object(self.bucket, name)
        except MinioException as exc:
            raise self._error(name[len(self.prefix):], exc) from None
        return info.size or 0, bool(info.metadata and info.metadata.get(APPEND_META))

    def _pieces(self, name: str) -> list[_Piece]:
        """The objects holding `name`'s bytes, in order: itself, then its segments if marked."""
        size, marked = self._head(name)
        return [_Piece(name, size)] + (self._live_segments(name, size) if marked else [])

    def _live_segments(self, name: str, base: int) -> list[_Piece]:
        # Segments follow each other exactly; any other (left by an overwritten object, or a
        # concurrent writer that lost a race) is not part of the object.
        live, end = [], base
        for piece in self._segments(name):
            if piece.name == _segment_name(name, end):
                live.append(piece)
                end += piece.size
        return live

    def _composite_size(self, name: str) -> tuple[int, bool]:
        size, marked = self._head(name)
        if marked:
            size += sum(p.size for p in self._live_segments(name, size))
        return size, marked

    def _mark(self, name: str) -> None:
        """Mark a plain object appendable (a server-side copy onto itself), dropping stale segments."""
        self._remove([p.name for p in self._segments(name)])
        try:
            self.client.copy_object(self.bucket, name, CopySource(self.bucket, name),
                                    metadata={APPEND_META: "1"}, metadata_directive="REPLACE")
        except MinioException as exc:
            raise self._error(name[len(self.prefix):], exc) from None

    def _remove(self, names: list[str]) -> None:
        for start in range(0, len(names), 1000):
            errors = list(self.client.remove_objects(
                self.bucket, (DeleteObject(n) for n in names[start:start + 1000])))
            failed = [e for e in errors if e.code not in _NOT_FOUND]
            if failed:
                raise StorageError(f"S3 {self.bucket}: cannot delete {failed[0].name}: {failed[0].message}")

    # -- the contract ----------------------------------------------------------------------------

    def _stat(self, key: str) -> int:
        return self._composite_size(self._name(key))[0]

    def _open_read(self, key: str, offset: int) -> BinaryIO:
        name = self._name(key)
        try:
            # One GET for a plain object: its headers say whether it has segments.
            response = self.client.get_object(self.bucket, name, offset=offset)
        except S3Error as exc:
            if exc.code != "InvalidRange":
                raise self._error(key, exc) from None
            response = None  # at or past the end of the base object
        except MinioException as exc:
            raise self._error(key, exc) from None
        if response is not None and not response.headers.get(APPEND_META):
            return _ChainReader(self, [], 0, first=response)  # type: ignore[return-value]
        if response is not None:
            response.close()
            response.release_conn()
        return _ChainReader(self, self._pieces(name), offset)  # type: ignore[return-value]

    def _write_bytes(self, key: str, data: bytes) -> None:
        if len(data) <= PART_SIZE:
            self._put(self._name(key), data)
            return
        with self._writer(key, False) as w:
            w.write(data)
            w.commit()

    def _writer(self, key: str, append: bool) -> Writer:
        return _S3Writer(self, key, append)

    def _move(self, source: str, destination: str) -> None:
        src, dst = self._name(source), self._name(destination)
        pieces = [p for p in self._pieces(src) if p.size]
        try:
            if len(pieces) == 1 and pieces[0].size <= MAX_COPY_PART:
                self.client.copy_object(self.bucket, dst, CopySource(self.bucket, pieces[0].name),
                                        metadata={}, metadata_directive="REPLACE")
            elif not pieces:
                self._put(dst, b"")
            else:
                self._compose(dst, pieces)
        except MinioException as exc:
            raise self._error(source, exc) from None
        self._delete(source)

    def _compose(self, dst: str, pieces: list[_Piece]) -> None:
        """Concatenate `pieces` into `dst` on the server; pieces below S3's minimum part size
        are read back into one buffer (at most `PART_SIZE` bytes)."""
        client, bucket = self.client, self.bucket
        upload_id = client._create_multipart_upload(bucket, dst, {})
        parts: list[Part] = []
        buffer = bytearray()

        def upload(data: bytes) -> None:
            parts.append(Part(len(parts) + 1, client._upload_part(bucket, dst, data, None, upload_id, len(parts) + 1)))

        try:
            for piece in pieces:
                offset = 0
                while offset < piece.size:
                    remaining = piece.size - offset
                    if not buffer and remaining >= MIN_PART:
                        n = min(remaining, MAX_COPY_PART)
                        headers: dict[str, str | list[str] | tuple[str]] = {
                            "x-amz-copy-source": quote(f"/{bucket}/{piece.name}"),
                            "x-amz-copy-source-range": f"bytes={offset}-{offset + n - 1}"}
                        etag, _ = client._upload_part_copy(bucket, dst, upload_id, len(parts) + 1, headers)
                        parts.append(Part(len(parts) + 1, etag))
                    else:
                        n = min(remaining, PART_SIZE - len(buffer))
                        response = self._get(piece.name, offset, n)
                        try:
                            buffer += response.read()
                        finally:
                            response.close()
                            response.release_conn()
                        if len(buffer) >= PART_SIZE:
                            upload(bytes(buffer))
                            buffer.clear()
                    offset += n
            if buffer or not parts:
                upload(bytes(buffer))
            client._complete_multipart_upload(bucket, dst, upload_id, parts)
        except BaseException:
            try:
                client._abort_multipart_upload(bucket, dst, upload_id)
            except MinioException:
                pass
            raise

    def _delete(self, key: str) -> None:
        name = self._name(key)
        try:
            names = [name] + [o.object_name for prefix in (name + SEGMENT, name + "/")
                              for o in self.client.list_objects(self.bucket, prefix=prefix, recursive=True)]
        except MinioException as exc:
            raise self._error(key, exc) from None
        self._remove(names)

    def _list(self, prefix: str) -> Iterator[str]:
        try:
            for obj in self.client.list_objects(self.bucket, prefix=self._name(prefix) + "/", recursive=True):
                name = obj.object_name[len(self.prefix):]
                if SEGMENT not in name:
                    yield name
        except MinioException as exc:
            raise self._error(prefix, exc) from None

    def redirect_url(self, key: str) -> str | None:
        if not self.redirect:
            return None
        return self.client.presigned_get_object(self.bucket, self._name(self.check_key(key)),
                                                expires=self.redirect_expiry)


SUPPORTED = "s3://BUCKET[/PREFIX]?endpoint=http(s)://HOST:PORT&region=REGION[&redirect=true]"


def open_s3(url: str, env: Mapping[str, str] | None = None) -> S3Store:
    """The store `url` names, after checking that the bucket is there and the credentials work
    (from `env`, default the process environment)."""
    env = os.environ if env is None else env
    parsed = urlparse(url)
    query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    unknown = set(query) - {"endpoint", "region", "redirect"}
    if unknown:
        raise StorageConfigError(f"unknown parameter(s) {', '.join(sorted(unknown))} in the storage URL; "
                                 f"expected {SUPPORTED}")
    bucket = parsed.netloc
    if not bucket:
        raise StorageConfigError(f"no bucket in {url!r}; expected {SUPPORTED}")
    endpoint = query.get("endpoint", "https://s3.amazonaws.com")
    ep = urlparse(endpoint if "://" in endpoint else "https://" + endpoint)
    if ep.scheme not in ("http", "https") or not ep.netloc or ep.path.strip("/") or ep.query:
        raise StorageConfigError(f"bad endpoint {endpoint!r} (http(s)://HOST[:PORT], no path) in {url!r}; "
                                 f"expected {SUPPORTED}")
    access, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if not access or not secret:
        raise StorageConfigError(f"{url!r}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for S3")
    http = urllib3.PoolManager(
        timeout=Timeout(connect=10, read=120), maxsize=32,
        retries=Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]))
    try:
        client = Minio(ep.netloc, access_key=access, secret_key=secret,
                       session_token=env.get("AWS_SESSION_TOKEN"), secure=ep.scheme == "https",
                       region=query.get("region"), http_client=http)
    except ValueError as exc:  # a port out of range, a host the SDK cannot parse
        raise StorageConfigError(f"bad endpoint {endpoint!r} ({exc}); expected {SUPPORTED}") from None
    try:
        found = client.bucket_exists(bucket)
    except S3Error as exc:
        raise StorageConfigError(f"S3 at {endpoint} refused access to bucket {bucket!r} ({exc.code}): "
                                 "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and region") from None
    except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise StorageConfigError(f"cannot reach S3 endpoint {endpoint}: {reason}") from None
    except ValueError as exc:  # the SDK checks the name before asking
        raise StorageConfigError(f"invalid bucket name {bucket!r} ({exc}); expected {SUPPORTED}") from None
    if not found:
        raise StorageConfigError(f"S3 bucket {bucket!r} does not exist at {endpoint}; create it first")
    return S3Store(client, bucket, parsed.path, redirect=query.get("redirect", "").lower() in ("1", "true", "yes"))
