"""Blob storage: one small interface (`base.BlobStore`), one module per backend.

`open_store(url)` picks the backend from a URL: `file:///path` (or a plain path) for the
filesystem; object-store backends join here, each passing `tests/storage/contract.py` unchanged.
"""

from __future__ import annotations

from urllib.parse import urlparse

from dockyard.storage.base import BlobNotFound, BlobStore, InvalidKey, StorageError, Writer


def open_store(url: str) -> BlobStore:
    """Construct the blob store that `url` names."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        from dockyard.storage.filesystem import FilesystemStore

        return FilesystemStore(parsed.path if parsed.scheme else url)
    if parsed.scheme == "memory":
        from dockyard.storage.memory import MemoryStore

        return MemoryStore()
    raise ValueError(f"unsupported storage URL scheme: {parsed.scheme!r}")


def blob_key(digest: str) -> str:
    """Where the bytes of a blob with `digest` (`algorithm:hex`) live: content-addressed."""
    algorithm, hexpart = digest.split(":", 1)
    return f"blobs/{algorithm}/{hexpart[:2]}/{hexpart}"


__all__ = ["BlobNotFound", "BlobStore", "InvalidKey", "StorageError", "Writer", "blob_key", "open_store"]
