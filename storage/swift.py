"""The OpenStack Swift backend, through `python-swiftclient`.

URL: `swift://CONTAINER[/PREFIX][?redirect=true]`, credentials from Swift's standard variables: `ST_AUTH`,
`ST_USER`, `ST_KEY` (v1 auth, e.g. tempauth), or `OS_AUTH_URL`, `OS_USERNAME`, `OS_PASSWORD`,
`OS_PROJECT_NAME`, `OS_USER_DOMAIN_NAME`, `OS_PROJECT_DOMAIN_NAME`, `OS_REGION_NAME` (Keystone
v3). `open_swift` checks the container once at start.

A writer sends what fits in one buffer as a single PUT at `commit()`. Anything larger, and
every append, goes up as *segment* objects `KEY~<id>/<n>` (`~` is outside the key grammar, so
`list` leaves them out) and `commit()` writes a Static Large Object manifest at the key: one
PUT, atomic, and nothing is visible under the key before it (DESIGN.md rule 3). Appending
reads the manifest (a list, not the data) and writes it again with the new segments, so it
costs the bytes appended. Swift serves ranges of a manifest itself. `move` copies on the
server (a plain object at once, a manifest segment by segment) and deletes the source.
Limit: Swift's `max_manifest_segments` (1,000 by default) bounds the commits of one upload.

`redirect=true`: a blob GET answers 307 to a TempURL (HMAC-SHA256, 20 minutes) signed with the
container's `X-Container-Meta-Temp-URL-Key` (or the account's), which the operator sets (Dockyard
only reads it); the proxy must run the `tempurl` middleware.
"""

from __future__ import annotations

import importlib.util
import io
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urlparse

import orjson
from swiftclient.client import ClientException, Connection
from swiftclient.utils import generate_temp_url

from dockyard.storage.base import BlobNotFound, BlobStore, StorageConfigError, StorageError, Writer

MiB = 1 << 20
SEGMENT_SIZE = 8 * MiB
SEGMENT = "~"
NOT_FOUND_RETRIES = 2  # a GET answered 404 is asked again this many times (see `_open_read`)


def segment_size(number: int) -> int:
    """Segments grow by `SEGMENT_SIZE` every 100: 1,000 segments then hold ~43 GiB."""
    return SEGMENT_SIZE * (1 + number // 100)


class _Reader(io.RawIOBase):
    def __init__(self, body: Any, done: Callable[[], None]) -> None:
        self._body, self._done = body, done  # swiftclient's _ObjectBody (a streamed GET)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._body.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
            self._done()  # the connection may carry the next request
        super().close()


class _SwiftWriter(Writer):
    def __init__(self, store: SwiftStore, key: str, append: bool) -> None:
        self._store, self._key, self._name = store, key, store._name(key)
        self._buffer = bytearray()
        # The manifest so far when continuing an object (None: read it at the next commit).
        self._committed: list[dict[str, Any]] | None = None
        self._new: list[dict[str, Any]] = []
        self._run = uuid.uuid4().hex
        self._continuing = append
        self._size = 0
        if append:
            self._committed = store._manifest(key, create=True)
            self._size = sum(s["size_bytes"] for s in self._committed)

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes | memoryview) -> None:
        self._buffer += data
        self._size += len(data) if isinstance(data, bytes) else data.nbytes
        while len(self._buffer) >= (n := segment_size(len(self._committed or ()) + len(self._new))):
            self._segment(bytes(self._buffer[:n]))
            del self._buffer[:n]

    def _segment(self, data: bytes) -> None:
        name = f"{self._name}{SEGMENT}{self._run}/{len(self._new):06d}"
        etag = self._store._call(self._key, "put_object", self._store.container, name, data)
        self._new.append({"path": f"/{self._store.container}/{name}", "etag": etag, "size_bytes": len(data)})

    def commit(self) -> None:
        if not self._continuing and not self._new:
            # Everything fits in one PUT: a plain object.
            self._store._call(self._key, "put_object", self._store.container, self._name, bytes(self._buffer))
        else:
            if self._buffer:
                self._segment(bytes(self._buffer))
            if self._continuing and not self._new:
                return  # nothing new: the object already holds every byte
            if self._committed is None:
                self._committed = self._store._manifest(self._key, create=True) if self._continuing else []
            self._store._put_manifest(self._key, self._committed + self._new)
            self._committed = self._committed + self._new
        self._buffer.clear()
        self._new, self._run = [], uuid.uuid4().hex
        if not self._continuing:
            # Further writes continue the now-visible object (made a manifest if they come).
            self._committed, self._continuing = None, True

    def close(self) -> None:
        self._buffer = bytearray()
        if self._new:  # never committed: its segments go
            names = [s["path"].split("/", 2)[2] for s in self._new]
            self._new = []
            self._store._remove(names)


class SwiftStore(BlobStore):
    def __init__(self, connect: Any, container: str, prefix: str = "", *, temp_url: tuple[str, str] | None = None,
                 redirect_seconds: int = 20 * 60) -> None:
        """`temp_url`: (the account's storage URL, the TempURL key) to answer `redirect_url` with."""
        self._connect, self.container = connect, container
        self._temp_url, self._redirect_seconds = temp_url, redirect_seconds
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        # A swiftclient Connection carries one request at a time (a new request cuts off a
        # response still being read), so each call takes one from this pool; a reader keeps
        # its own until closed.
        self._idle: list[Connection] = []
        self._lock = threading.Lock()

    def _acquire(self) -> Connection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def _release(self, connection: Connection) -> None:
        with self._lock:
            self._idle.append(connection)

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        connection = self._acquire()
        try:
            yield connection
        finally:
            self._release(connection)

    def _name(self, key: str) -> str:
        return self.prefix + key

    def _call(self, key: str, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            with self._connection() as connection:
                return getattr(connection, method)(*args, **kwargs)
        except ClientException as exc:
            if exc.http_status == 404:
                raise BlobNotFound(key) from None
            raise StorageError(f"Swift {self.container}/{self._name(key)}: {exc}".splitlines()[0]) from None

    def _manifest(self, key: str, *, create: bool) -> list[dict[str, Any]]:
        """The segments of the object at `key`, making it a manifest first if it is a plain
        object (copied, on the server, to be its first segment) or, with `create`, absent."""
        name = self._name(key)
        try:
            with self._connection() as connection:
                headers = connection.head_object(self.container, name, query_string="multipart-manifest=get")
        except ClientException as exc:
            if exc.http_status != 404 or not create:
                raise StorageError(f"Swift {self.container}/{name}: {exc}".splitlines()[0]) from None
            self._put_manifest(key, [])  # like O_CREAT: an append writer starts the object
            return []
        if headers.get("x-static-large-object", "").lower() == "true":
            _, body = self._call(key, "get_object", self.container, name, query_string="multipart-manifest=get")
            return [{"path": "/" + s["name"].lstrip("/"), "etag": s["hash"], "size_bytes": s["bytes"]}
                    for s in orjson.loads(body)]
        size = int(headers["content-length"])
        if not size:
            return []
        first = f"{name}{SEGMENT}{uuid.uuid4().hex}/000000"
        self._call(key, "copy_object", self.container, name, destination=f"/{self.container}/{first}")
        return [{"path": f"/{self.container}/{first}", "etag": headers.get("etag", "").strip('"'), "size_bytes": size}]

    def _put_manifest(self, key: str, segments: list[dict[str, Any]]) -> None:
        self._call(key, "put_object", self.container, self._name(key), orjson.dumps(segments),
                   query_string="multipart-manifest=put")

    def _remove(self, names: list[str]) -> None:
        for name in names:
            try:
                with self._connection() as connection:
                    connection.delete_object(self.container, name)
            except ClientException as exc:
                if exc.http_status != 404:
                    raise StorageError(f"Swift {self.container}/{name}: cannot delete: {exc}".splitlines()[0]) from None

    def _listing(self, prefix: str) -> list[str]:
        _, objects = self._call(prefix, "get_container", self.container, prefix=prefix, full_listing=True)
        return [o["name"] for o in objects]

    # -- the contract ----------------------------------------------------------------------------

    def _stat(self, key: str) -> int:
        return int(self._call(key, "head_object", self.container, self._name(key))["content-length"])

    def _open_read(self, key: str, offset: int) -> BinaryIO:
        # A GET that races an overwrite can find no object on a single object server: the server
        # lists the old version, then the PUT's cleanup removes it before the GET opens it (a
        # proxy with replicas asks another node; with one there is none). Asked again, it finds
        # the new version; an object that really is missing answers 404 every time.
        for attempt in range(NOT_FOUND_RETRIES + 1):
            try:
                return self._get(key, offset)
            except BlobNotFound:
                if attempt == NOT_FOUND_RETRIES:
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    def _get(self, key: str, offset: int) -> BinaryIO:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        connection = self._acquire()
        try:
            _, body = connection.get_object(self.container, self._name(key), resp_chunk_size=MiB, headers=headers)
        except ClientException as exc:
            self._release(connection)
            if exc.http_status == 416:  # at or past the end of an existing object: no bytes
                return io.BytesIO()
            if exc.http_status == 404:
                raise BlobNotFound(key) from None
            raise StorageError(f"Swift {self.container}/{self._name(key)}: {exc}".splitlines()[0]) from None
        return io.BufferedReader(_Reader(body, lambda: self._release(connection)), MiB)

    def _write_bytes(self, key: str, data: bytes) -> None:
        with self._writer(key, False) as w:
            w.write(data)
            w.commit()

    def _writer(self, key: str, append: bool) -> Writer:
        return _SwiftWriter(self, key, append)

    def _move(self, source: str, destination: str) -> None:
        src, dst = self._name(source), self._name(destination)
        headers = self._call(source, "head_object", self.container, src, query_string="multipart-manifest=get")
        if headers.get("x-static-large-object", "").lower() != "true":
            self._call(source, "copy_object", self.container, src, destination=f"/{self.container}/{dst}")
        else:
            run = uuid.uuid4().hex
            copied = []
            for i, segment in enumerate(self._manifest(source, create=False)):
                name = f"{dst}{SEGMENT}{run}/{i:06d}"
                self._call(source, "copy_object", self.container, segment["path"].split("/", 2)[2],
                           destination=f"/{self.container}/{name}")
                copied.append({**segment, "path": f"/{self.container}/{name}"})
            self._put_manifest(destination, copied)
        self._delete(source)

    def _delete(self, key: str) -> None:
        name = self._name(key)
        self._remove([name] + self._listing(name + SEGMENT) + self._listing(name + "/"))

    def _list(self, prefix: str) -> Iterator[str]:
        for name in self._listing(self._name(prefix) + "/"):
            if SEGMENT not in name:
                yield name[len(self.prefix):]

    def redirect_url(self, key: str) -> str | None:
        if self._temp_url is None:
            return None
        storage_url, temp_url_key = self._temp_url
        account = urlparse(storage_url)
        path = f"{account.path.rstrip('/')}/{self.container}/{self._name(self.check_key(key))}"
        signed = generate_temp_url(path, self._redirect_seconds, temp_url_key, "GET")
        return f"{account.scheme}://{account.netloc}{signed}"


SUPPORTED = ("swift://CONTAINER[/PREFIX][?redirect=true] with ST_AUTH, ST_USER, ST_KEY (v1) or OS_AUTH_URL, "
             "OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME (Keystone v3)")


def _connector(env: Mapping[str, str], retries: int) -> Any:
    if env.get("ST_AUTH"):
        if not env.get("ST_USER") or not env.get("ST_KEY"):
            raise StorageConfigError(f"ST_AUTH is set but ST_USER or ST_KEY is not; expected {SUPPORTED}")
        kwargs: dict[str, Any] = {"authurl": env["ST_AUTH"], "user": env["ST_USER"], "key": env["ST_KEY"],
                                  "auth_version": "1"}
    elif env.get("OS_AUTH_URL"):
        version = env.get("OS_AUTH_VERSION", env.get("OS_IDENTITY_API_VERSION", "3"))
        if version not in ("1", "1.0") and importlib.util.find_spec("keystoneclient") is None:
            raise StorageConfigError("OS_AUTH_URL (Keystone) needs python-keystoneclient, which is not installed: "
                                     "pip install python-keystoneclient, or use ST_AUTH, ST_USER, ST_KEY (v1)")
        kwargs = {"authurl": env["OS_AUTH_URL"], "user": env.get("OS_USERNAME"), "key": env.get("OS_PASSWORD"),
                  "auth_version": version,
                  "os_options": {k: env[v] for k, v in (
                      ("project_name", "OS_PROJECT_NAME"), ("project_id", "OS_PROJECT_ID"),
                      ("user_domain_name", "OS_USER_DOMAIN_NAME"), ("project_domain_name", "OS_PROJECT_DOMAIN_NAME"),
                      ("region_name", "OS_REGION_NAME")) if env.get(v)}}
    else:
        raise StorageConfigError(f"no Swift credentials in the environment; expected {SUPPORTED}")

    def connect() -> Connection:
        return Connection(retries=retries, starting_backoff=0.5, max_backoff=4, timeout=30, **kwargs)

    return connect


def open_swift(url: str, env: Mapping[str, str] | None = None) -> SwiftStore:
    """The store `url` names, after checking that the container is there and the credentials work
    (from `env`, default the process environment)."""
    env = os.environ if env is None else env
    parsed = urlparse(url)
    query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    if unknown := set(query) - {"redirect"}:
        raise StorageConfigError(f"unknown parameter(s) {', '.join(sorted(unknown))} in the storage URL; "
                                 f"expected {SUPPORTED}")
    container = parsed.netloc
    if not container:
        raise StorageConfigError(f"no container in {url!r}; expected {SUPPORTED}")
    connect = _connector(env, retries=3)
    probe = _connector(env, retries=0)()
    where = probe.authurl
    try:
        headers = probe.head_container(container)
        temp_url = None
        if query.get("redirect", "").lower() in ("1", "true", "yes"):
            temp_url = _temp_url(probe, container, headers, where)
    except ClientException as exc:
        if exc.http_status == 404:
            raise StorageConfigError(
                f"Swift container {container!r} does not exist at {where}; create it first") from None
        if exc.http_status in (401, 403):
            raise StorageConfigError(f"Swift at {where} refused the credentials ({exc.http_status}): "
                                     "check ST_USER/ST_KEY or OS_USERNAME/OS_PASSWORD") from None
        raise StorageConfigError(f"Swift at {where}: {' '.join(str(exc).split())}") from None
    except OSError as exc:
        raise StorageConfigError(f"cannot reach Swift at {where}: {exc}") from None
    finally:
        probe.close()
    return SwiftStore(connect, container, parsed.path, temp_url=temp_url)


def _temp_url(probe: Connection, container: str, headers: Mapping[str, str], where: str) -> tuple[str, str]:
    """(storage URL, key) to sign TempURLs with: the container's key, else the account's."""
    key = headers.get("x-container-meta-temp-url-key") or probe.head_account().get("x-account-meta-temp-url-key")
    if not key:
        raise StorageConfigError(
            f"redirect=true signs TempURLs, but container {container!r} at {where} has no X-Container-Meta-"
            f"Temp-URL-Key (nor its account one): set it, e.g. `swift post -m Temp-URL-Key:SECRET {container}`")
    return probe.url, key

