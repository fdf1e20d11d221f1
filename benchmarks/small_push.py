"""A small image pushed through the commands, as the HTTP routes push it (no HTTP, no auth).

Shared by `gc.py` (pushes during GC) and `scale.py` (pushes as the registry grows): two blobs
uploaded through `UploadSessions` (start, append, finish: the bytes in storage, then `Linked`),
then the manifest through `Registry.push_manifest` (the blob checks, the fence, the tag).
"""

from __future__ import annotations

import hashlib

import orjson

from dockyard.commands.registry import Registry
from dockyard.commands.uploads import UploadSessions
from dockyard.domain.manifest_format import OCI_MANIFEST


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def manifest_body(config: str, layers: list[str], sizes: list[int] | None = None) -> bytes:
    """An image manifest; every blob is 64 bytes unless `sizes` (config first) says otherwise."""
    sizes = sizes or [64] * (1 + len(layers))
    return orjson.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": sizes[0]},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": size}
                   for d, size in zip(layers, sizes[1:], strict=True)]})


def push_small_image(registry: Registry, uploads: UploadSessions, repository: str, tag: str,
                     label: str) -> list[str]:
    """Push a config and a layer unique to `label`, then a manifest tagged `tag`; the blobs' digests."""
    blobs, sizes = [], []
    for part in (b"config", b"layer"):
        data = f"{label}-".encode() + part
        upload_id = uploads.start(repository)
        append = uploads.append(repository, upload_id)
        append.write(data)
        append.close()
        uploads.finish(repository, upload_id, sha256(data))
        blobs.append(sha256(data))
        sizes.append(len(data))
    registry.push_manifest(repository, tag, None, manifest_body(blobs[0], blobs[1:], sizes))
    return blobs
