"""The Azure Blob Storage backend, through `azure-storage-blob` (Azure, Azurite).

URL: `azure://CONTAINER[/PREFIX][?redirect=true]`, credentials and endpoint from
`AZURE_STORAGE_CONNECTION_STRING`. `open_azure` checks the container once at start.

Every object is a block blob written block by block: a writer stages `BLOCK_SIZE` blocks as
they fill (one buffer: constant memory) and `commit()` commits the block list, atomically;
staged blocks are invisible until then, and Azure discards those never committed. Appending
commits the blob's committed block list plus the new blocks, so it costs only the bytes
appended. `move` is a server-side copy then a delete. Two writers replacing the *same* key
at once are not supported (Azure keeps one uncommitted block list per blob); Dockyard never
does that (upload sessions are per key, blobs are written once by `move`).
"""

from __future__ import annotations

import base64
import io
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urlparse

from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError, ServiceRequestError
from azure.storage.blob import BlobBlock, BlobSasPermissions, BlobServiceClient, ContainerClient, generate_blob_sas

from dockyard.storage.base import BlobNotFound, BlobStore, StorageConfigError, StorageError, Writer

MiB = 1 << 20
BLOCK_SIZE = 8 * MiB
COPY_TIMEOUT = 600.0


def _block_id() -> str:
    return base64.b64encode(uuid.uuid4().hex.encode()).decode()  # one length for every id


class _Reader(io.RawIOBase):
    def __init__(self, downloader: Any) -> None:
        self._downloader = downloader

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._downloader.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class _AzureWriter(Writer):
    def __init__(self, store: AzureStore, key: str, append: bool) -> None:
        self._store, self._key = store, key
        self._blob = store.container.get_blob_client(store._name(key))
        self._buffer = bytearray()
        self._committed: list[str] = []
        self._staged: list[str] = []
        self._size = 0
        if append:
            try:
                blocks, _ = self._blob.get_block_list("committed")
                self._committed = [b.id for b in blocks]
                self._size = sum(b.size for b in blocks)
            except ResourceNotFoundError:  # like O_CREAT: an append writer starts the object
                store._call(key, self._blob.commit_block_list, [])
            except AzureError as exc:
                raise store._error(key, exc) from None

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes | memoryview) -> None:
        self._buffer += data
        self._size += len(data) if isinstance(data, bytes) else data.nbytes
        while len(self._buffer) >= BLOCK_SIZE:
            self._stage(bytes(self._buffer[:BLOCK_SIZE]))
            del self._buffer[:BLOCK_SIZE]

    def _stage(self, data: bytes) -> None:
        block = _block_id()
        self._store._call(self._key, self._blob.stage_block, block, data, length=len(data))
        self._staged.append(block)

    def commit(self) -> None:
        if self._buffer:
            self._stage(bytes(self._buffer))
            self._buffer.clear()
        blocks = self._committed + self._staged
        self._store._call(self._key, self._blob.commit_block_list, [BlobBlock(b) for b in blocks])
        # Further writes continue the now-visible object.
        self._committed, self._staged = blocks, []

    def close(self) -> None:
        self._buffer = bytearray()
        self._staged = []  # Azure drops uncommitted blocks by itself


class AzureStore(BlobStore):
    def __init__(self, service: BlobServiceClient, container: str, prefix: str = "", *,
                 redirect: bool = False, redirect_expiry: timedelta = timedelta(minutes=20)) -> None:
        self.service = service
        self.container: ContainerClient = service.get_container_client(container)
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.redirect, self.redirect_expiry = redirect, redirect_expiry

    def _name(self, key: str) -> str:
        return self.prefix + key

    def _error(self, key: str, exc: AzureError) -> StorageError:
        if isinstance(exc, ResourceNotFoundError):
            return BlobNotFound(key)
        return StorageError(f"Azure {self.container.container_name}/{self._name(key)}: {exc}".splitlines()[0])

    def _call(self, key: str, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except AzureError as exc:
            raise self._error(key, exc) from None

    def _stat(self, key: str) -> int:
        blob = self.container.get_blob_client(self._name(key))
        return int(self._call(key, blob.get_blob_properties).size)

    def _open_read(self, key: str, offset: int) -> BinaryIO:
        blob = self.container.get_blob_client(self._name(key))
        try:
            downloader = blob.download_blob(offset=offset or None)
        except HttpResponseError as exc:
            if exc.status_code != 416:  # at or past the end of an existing object: no bytes
                raise self._error(key, exc) from None
            return io.BytesIO()
        except AzureError as exc:
            raise self._error(key, exc) from None
        return io.BufferedReader(_Reader(downloader), MiB)

    def _write_bytes(self, key: str, data: bytes) -> None:
        with self._writer(key, False) as w:
            w.write(data)
            w.commit()

    def _writer(self, key: str, append: bool) -> Writer:
        return _AzureWriter(self, key, append)

    def _move(self, source: str, destination: str) -> None:
        src = self.container.get_blob_client(self._name(source))
        dst = self.container.get_blob_client(self._name(destination))
        self._call(source, src.get_blob_properties)
        copy = self._call(source, dst.start_copy_from_url, src.url)
        deadline = time.monotonic() + COPY_TIMEOUT
        status = copy.get("copy_status")
        while status == "pending":  # a same-account copy is usually done at once
            if time.monotonic() > deadline:
                raise StorageError(f"Azure copy of {source} to {destination} did not finish in {COPY_TIMEOUT:g} s")
            time.sleep(0.1)
            status = self._call(destination, dst.get_blob_properties).copy.status
        if status != "success":
            raise StorageError(f"Azure copy of {source} to {destination} ended {status}")
        self._delete(source)

    def _delete(self, key: str) -> None:
        name = self._name(key)
        try:
            names = [name] + list(self.container.list_blob_names(name_starts_with=name + "/"))
            for n in names:
                try:
                    self.container.delete_blob(n)
                except ResourceNotFoundError:
                    pass
        except AzureError as exc:
            raise self._error(key, exc) from None

    def _list(self, prefix: str) -> Iterator[str]:
        try:
            for name in self.container.list_blob_names(name_starts_with=self._name(prefix) + "/"):
                yield name[len(self.prefix):]
        except AzureError as exc:
            raise self._error(prefix, exc) from None

    def redirect_url(self, key: str) -> str | None:
        credential = self.service.credential
        if not self.redirect or not getattr(credential, "account_key", None):
            return None
        blob = self.container.get_blob_client(self._name(self.check_key(key)))
        sas = generate_blob_sas(blob.account_name or "", blob.container_name, blob.blob_name,
                                account_key=credential.account_key, permission=BlobSasPermissions(read=True),
                                expiry=datetime.now(UTC) + self.redirect_expiry)
        return f"{blob.url}?{sas}"


SUPPORTED = "azure://CONTAINER[/PREFIX][?redirect=true] with AZURE_STORAGE_CONNECTION_STRING"


def open_azure(url: str, env: Mapping[str, str] | None = None) -> AzureStore:
    """The store `url` names, after checking that the container is there and the key works
    (the connection string from `env`, default the process environment)."""
    env = os.environ if env is None else env
    parsed = urlparse(url)
    query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    if unknown := set(query) - {"redirect"}:
        raise StorageConfigError(f"unknown parameter(s) {', '.join(sorted(unknown))} in the storage URL; "
                                 f"expected {SUPPORTED}")
    container = parsed.netloc
    if not container:
        raise StorageConfigError(f"no container in {url!r}; expected {SUPPORTED}")
    connection = env.get("AZURE_STORAGE_CONNECTION_STRING")
    if not connection:
        raise StorageConfigError(f"{url!r}: set AZURE_STORAGE_CONNECTION_STRING for Azure")
    try:
        # Azure's default retries wait 15 s, then 45 s...: a registry request cannot wait that long.
        service = BlobServiceClient.from_connection_string(
            connection, max_single_get_size=4 * MiB, max_chunk_get_size=4 * MiB, retry_total=3,
            initial_backoff=0.5, increment_base=2, connection_timeout=10)
        probe = BlobServiceClient.from_connection_string(connection, retry_total=0, connection_timeout=10)
    except ValueError as exc:
        raise StorageConfigError(f"AZURE_STORAGE_CONNECTION_STRING is not usable: {exc}") from None
    endpoint = service.url
    try:
        found = probe.get_container_client(container).exists()
    except ServiceRequestError as exc:
        raise StorageConfigError(f"cannot reach Azure endpoint {endpoint}: {str(exc).splitlines()[0]}") from None
    except HttpResponseError as exc:
        code = getattr(exc, "error_code", None) or exc.status_code
        raise StorageConfigError(f"Azure at {endpoint} refused access to container {container!r} "
                                 f"({code}): check AZURE_STORAGE_CONNECTION_STRING") from None
    except AzureError as exc:
        raise StorageConfigError(f"Azure at {endpoint}: {str(exc).splitlines()[0]}") from None
    if not found:
        raise StorageConfigError(f"Azure container {container!r} does not exist at {endpoint}; create it first")
    redirect = query.get("redirect", "").lower() in ("1", "true", "yes")
    return AzureStore(service, container, parsed.path, redirect=redirect)
