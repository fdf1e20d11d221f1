"""Fixtures and helpers the GC unit tests share: the registry on in-memory SQLite, the memory
blob store, uploads, and a marker read from the registry's log."""

from __future__ import annotations

from dockyard.commands.registry import Registry
from dockyard.commands.uploads import UploadSessions
from dockyard.gc.mark import Marker, mark

# The registry's fixtures (in-memory shared SQLite, memory store) and helpers, re-exported.
from tests.unit.test_registry_commands import (  # noqa: F401
    env,
    image_manifest,
    index_manifest,
    registry,
    sha256,
    store,
    upload,
    uploads,
)


def marked(registry: Registry) -> Marker:
    """The marker folded up to the registry's last event."""
    return mark(registry.recorder, registry.mapper, registry.recorder.max_notification_id() or 0)


def push_image(registry: Registry, uploads: UploadSessions, repository: str, tag: str | None,
               *layers: bytes, config: bytes = b"{}") -> tuple[str, list[str]]:
    """Upload a config and `layers`, push a manifest naming them (under `tag`, or by digest);
    return the manifest digest and the blob digests."""
    blobs = [upload(uploads, repository, config)] + [upload(uploads, repository, data) for data in layers]
    body = image_manifest(blobs[0], *blobs[1:])
    digest = sha256(body)
    registry.push_manifest(repository, tag or digest, None, body)
    return digest, blobs
