"""Blob storage: one small interface (`base.BlobStore`), one module per backend.

`open_store(url)` picks the backend from a URL: `file:///path` (or a plain path) for the
filesystem, `s3://BUCKET[/PREFIX]?endpoint=…&region=…` for S3 (`storage/s3.py`),
`azure://CONTAINER[/PREFIX]` for Azure Blob Storage (`storage/azure.py`), `swift://CONTAINER[/PREFIX]`
for OpenStack Swift (`storage/swift.py`), `memory://` for the fake. Each backend passes
`tests/storage/contract.py` unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlparse

from dockyard.storage.base import (
    BlobNotFound,
    BlobStore,
    InvalidKey,
    OutOfSpace,
    StorageConfigError,
    StorageError,
    Writer,
)

SCHEMES = ("file:///PATH", "s3://BUCKET[/PREFIX]?endpoint=URL&region=R[&redirect=true]",
           "azure://CONTAINER[/PREFIX][?redirect=true]", "swift://CONTAINER[/PREFIX][?redirect=true]", "memory://")

CREDENTIALS = {"s3": "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY", "azure": "AZURE_STORAGE_CONNECTION_STRING",
               "swift": "ST_AUTH, ST_USER, ST_KEY or OS_*"}


def open_store(url: str, env: Mapping[str, str] | None = None) -> BlobStore:
    """Construct the blob store that `url` names, with credentials from `env` (default: the
    process environment; the variables each backend reads are in its module).

    An object store is checked on the way (its bucket or container exists, the credentials
    are accepted): anything wrong is a `StorageConfigError` whose message is one line.
    """
    parsed = urlparse(url)
    if parsed.scheme in CREDENTIALS and "@" in parsed.netloc:
        # Never echoed: a start-up error goes to the log, and the URL is shown and recorded.
        where = f"{parsed.scheme}://{parsed.netloc.rpartition('@')[2]}{parsed.path}"
        raise StorageConfigError(f"{where}: credentials go in the environment ({CREDENTIALS[parsed.scheme]}), "
                                 "not in the storage URL")
    if parsed.scheme in ("", "file"):
        from dockyard.storage.filesystem import FilesystemStore

        path = parsed.path if parsed.scheme else url
        try:
            return FilesystemStore(path)
        except OSError as exc:
            raise StorageConfigError(f"cannot use {path} for blobs: {exc.strerror or exc}; "
                                     "expected file:///PATH of a directory Dockyard can create and write") from None
    if parsed.scheme == "memory":
        from dockyard.storage.memory import MemoryStore

        return MemoryStore()
    if parsed.scheme == "s3":
        from dockyard.storage.s3 import open_s3

        return open_s3(url, env)
    if parsed.scheme == "azure":
        from dockyard.storage.azure import open_azure

        return open_azure(url, env)
    if parsed.scheme == "swift":
        from dockyard.storage.swift import open_swift

        return open_swift(url, env)
    raise StorageConfigError(f"unsupported storage URL scheme {parsed.scheme!r} in {url!r}; "
                             f"supported: {', '.join(SCHEMES)}")


def blob_key(digest: str) -> str:
    """Where the bytes of a blob with `digest` (`algorithm:hex`) live: content-addressed."""
    algorithm, hexpart = digest.split(":", 1)
    return f"blobs/{algorithm}/{hexpart[:2]}/{hexpart}"


__all__ = ["BlobNotFound", "BlobStore", "InvalidKey", "OutOfSpace", "StorageConfigError", "StorageError", "Writer",
           "blob_key", "open_store"]
