"""Copy every blob from one store to another, verifying each digest; resumable.

Blobs are content-addressed (`blobs/<algorithm>/<xx>/<hex>`), so a blob already in the
destination with the source's size was verified when it was copied there (a copy is committed
only after its bytes hashed to their name) and is skipped: running the migration again after
an interruption, or after the registry took more pushes, copies only what is missing. Upload
sessions (`_uploads/`) are not copied: a client whose upload spans the switch starts it again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from dockyard.storage.base import BlobNotFound, BlobStore, StorageError

PIECE = 1 << 20


@dataclass
class Migration:
    """What a run did: counts and bytes, and the keys that failed verification or copying."""

    total: int = 0
    total_bytes: int = 0
    copied: int = 0
    copied_bytes: int = 0
    skipped: int = 0
    skipped_bytes: int = 0
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return self.copied + self.skipped + len(self.failed)


def _digest_of(key: str) -> tuple[str, str] | None:
    """(algorithm, hex) that a blob key names, or None for anything else under `blobs/`."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != "blobs" or parts[3][:2] != parts[2]:
        return None
    if parts[1] not in hashlib.algorithms_available:
        return None
    return parts[1], parts[3]


def copy_blob(source: BlobStore, destination: BlobStore, key: str) -> int:
    """Stream `key` from `source` into `destination`, committing only if the bytes hash to the
    digest the key names; returns the size. `StorageError` on a mismatch (nothing is written)."""
    named = _digest_of(key)
    if named is None:
        raise StorageError(f"{key}: not a blob key (blobs/ALGORITHM/XX/HEX)")
    hasher = hashlib.new(named[0])
    with source.open_read(key) as reader, destination.writer(key) as writer:
        while piece := reader.read(PIECE):
            hasher.update(piece)
            writer.write(piece)
        if hasher.hexdigest() != named[1]:
            raise StorageError(f"{key}: the stored bytes hash to {named[0]}:{hasher.hexdigest()}, not the name")
        writer.commit()
        return writer.size


def migrate(source: BlobStore, destination: BlobStore,
            progress: Callable[[Migration, str], None] | None = None) -> Migration:
    """Copy every blob of `source` missing from `destination`; `progress(state, key)` after each."""
    state = Migration()
    sizes: dict[str, int] = {}
    for key in sorted(source.list("blobs")):
        try:
            sizes[key] = source.stat(key)
        except BlobNotFound:
            continue  # deleted (garbage-collected) since the listing
    state.total, state.total_bytes = len(sizes), sum(sizes.values())
    for key, size in sizes.items():
        try:
            present = destination.stat(key) == size
        except BlobNotFound:
            present = False
        if present:
            state.skipped += 1
            state.skipped_bytes += size
        else:
            try:
                state.copied_bytes += copy_blob(source, destination, key)
                state.copied += 1
            except BlobNotFound:
                state.total -= 1  # deleted since the listing: nothing to copy
                state.total_bytes -= size
            except StorageError as exc:
                state.failed[key] = str(exc)
        if progress is not None:
            progress(state, key)
    return state


def progress_bar(width: int = 30) -> Callable[[Migration, str], None]:
    """A `progress` callback drawing one updating line: bar, blobs and MiB done."""
    import sys

    def draw(state: Migration, key: str) -> None:
        done_bytes = state.copied_bytes + state.skipped_bytes
        filled = int(width * done_bytes / state.total_bytes) if state.total_bytes else width
        line = (f"\r[{'#' * filled}{'.' * (width - filled)}] {state.done}/{state.total} blobs, "
                f"{done_bytes / 2**20:.1f}/{state.total_bytes / 2**20:.1f} MiB"
                f"{f', {len(state.failed)} failed' if state.failed else ''}")
        sys.stderr.write(line)
        if state.done >= state.total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return draw
