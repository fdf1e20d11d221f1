"""Parsing and validation of manifests: Docker v2 schema 2, manifest lists, OCI manifests,
indexes and artifacts.

The registry never re-serialises a manifest: `parse_manifest` only reads the bytes to learn
what they reference; the bytes themselves are stored and served exactly as received.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from dockyard.domain.digest import Digest
from dockyard.domain.errors import ManifestInvalid, ManifestTooLarge

MAX_MANIFEST_BYTES = 4 * 1024 * 1024

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)

IMAGE_MANIFEST_TYPES = frozenset({DOCKER_MANIFEST, OCI_MANIFEST})
INDEX_TYPES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
MANIFEST_TYPES = IMAGE_MANIFEST_TYPES | INDEX_TYPES


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    urls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ParsedManifest:
    """What a manifest says about itself and what it references."""

    media_type: str
    digest: str
    size: int
    blobs: tuple[str, ...]  # config and layer digests that must be in the repository
    manifests: tuple[str, ...]  # child manifests of an index
    subject: str | None
    artifact_type: str | None
    annotations: dict[str, str]
    # The size each descriptor of `blobs` and `manifests` declares (checked against the stored ones).
    sizes: dict[str, int] = field(default_factory=dict)


def _bare(media_type: str | None) -> str:
    return (media_type or "").split(";", 1)[0].strip().lower()


def _descriptor(obj: Any, where: str) -> Descriptor:
    if not isinstance(obj, dict):
        raise ManifestInvalid(f"{where} is not a descriptor")
    media_type, digest, size = obj.get("mediaType"), obj.get("digest"), obj.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise ManifestInvalid(f"{where} has no mediaType")
    if not isinstance(digest, str):
        raise ManifestInvalid(f"{where} has no digest")
    try:
        Digest.parse(digest)
    except Exception:
        raise ManifestInvalid(f"{where} has an invalid digest", {"digest": digest}) from None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestInvalid(f"{where} has an invalid size")
    annotations = obj.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise ManifestInvalid(f"{where} has invalid annotations")
    urls = obj.get("urls") or ()
    if not isinstance(urls, list | tuple):
        raise ManifestInvalid(f"{where} has invalid urls")
    artifact_type = obj.get("artifactType")
    return Descriptor(media_type, digest, size, artifact_type if isinstance(artifact_type, str) else None,
                      annotations, tuple(urls))


def parse_manifest(body: bytes, content_type: str | None, algorithm: str = "sha256") -> ParsedManifest:
    """Validate `body` as a manifest of `content_type` and say what it references.

    The digest is computed over the exact bytes with `algorithm`.

    Raises `ManifestTooLarge` past 4 MiB and `ManifestInvalid` for anything malformed: not JSON,
    schemaVersion other than 2, an unknown or contradictory media type, bad descriptors.
    """
    if len(body) > MAX_MANIFEST_BYTES:
        raise ManifestTooLarge("manifest exceeds 4 MiB", {"size": len(body), "limit": MAX_MANIFEST_BYTES})
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ManifestInvalid("manifest is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ManifestInvalid("manifest is not a JSON object")
    declared, header = _bare(doc.get("mediaType")), _bare(content_type)
    if header in DOCKER_SCHEMA1 or declared in DOCKER_SCHEMA1 or doc.get("schemaVersion") == 1:
        raise ManifestInvalid("Docker schema 1 manifests are not supported")
    if doc.get("schemaVersion") != 2:
        raise ManifestInvalid("schemaVersion must be 2")
    if declared and header and header not in ("application/octet-stream", "application/json") \
            and declared != header:
        raise ManifestInvalid("mediaType does not match Content-Type",
                              {"mediaType": declared, "contentType": header})
    media_type = declared or header
    if media_type in ("", "application/octet-stream", "application/json"):
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    if media_type not in MANIFEST_TYPES:
        raise ManifestInvalid("unknown manifest media type", {"mediaType": media_type})

    subject = _descriptor(doc["subject"], "subject").digest if doc.get("subject") is not None else None
    artifact_type = doc.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise ManifestInvalid("artifactType must be a string")
    annotations = doc.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise ManifestInvalid("annotations must be an object")

    blobs: list[str] = []
    children: list[str] = []
    sizes: dict[str, int] = {}
    if media_type in IMAGE_MANIFEST_TYPES:
        if "manifests" in doc:
            raise ManifestInvalid("an image manifest has no 'manifests'")
        config = _descriptor(doc.get("config"), "config")
        layers = doc.get("layers", [])
        if not isinstance(layers, list):
            raise ManifestInvalid("layers must be a list")
        blobs.append(config.digest)
        sizes[config.digest] = config.size
        for i, raw in enumerate(layers):
            layer = _descriptor(raw, f"layers[{i}]")
            if not layer.urls:  # foreign layers live elsewhere
                blobs.append(layer.digest)
                sizes[layer.digest] = layer.size
        if artifact_type is None and media_type == OCI_MANIFEST:
            artifact_type = config.media_type
    else:
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise ManifestInvalid("an index needs a 'manifests' list")
        for i, raw in enumerate(entries):
            child = _descriptor(raw, f"manifests[{i}]")
            children.append(child.digest)
            sizes[child.digest] = child.size

    return ParsedManifest(
        media_type=media_type,
        digest=str(Digest.of(body, algorithm)),
        size=len(body),
        blobs=tuple(dict.fromkeys(blobs)),
        manifests=tuple(dict.fromkeys(children)),
        subject=subject,
        artifact_type=artifact_type,
        annotations={str(k): str(v) for k, v in annotations.items()},
        sizes=sizes,
    )
