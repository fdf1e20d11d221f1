"""A small OCI distribution client for the conformance tests (OCI distribution spec v1.1).

Builders make content (random blobs, OCI and Docker manifests, indexes, artifacts) without
touching the server; pushers send it the way the spec describes and assert the spec's happy
answer, so a test reads as the flow it checks and asserts only what it is about.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_JSON = b"{}"
EMPTY_JSON_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

# What an image manifest of each type puts in its config and layers, and the index type over it.
IMAGE_PARTS = {OCI_MANIFEST: (OCI_CONFIG, OCI_LAYER), DOCKER_MANIFEST: (DOCKER_CONFIG, DOCKER_LAYER)}
INDEX_OF = {OCI_MANIFEST: OCI_INDEX, DOCKER_MANIFEST: DOCKER_LIST}


@pytest.fixture
def client(shared_server) -> Iterator[httpx.Client]:
    """HTTP Basic as admin on the module's shared server (test modules import this fixture)."""
    with shared_server.client() as c:
        yield c


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def random_bytes(size: int) -> bytes:
    return os.urandom(size)


def unique_repo(prefix: str) -> str:
    """A repository name no other test uses (two components, as most real names have), in the
    namespace of the tests' client, `admin`: a push needs an account's namespace."""
    return f"admin/{prefix}-{uuid.uuid4().hex[:12]}"


# -- answers ---------------------------------------------------------------------------------------

def error_codes(response: httpx.Response) -> list[str]:
    return [e["code"] for e in response.json()["errors"]]


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    """`status`, and (except for HEAD, which has no body) `code` in the OCI error body."""
    assert response.status_code == status, (response.status_code, response.text)
    if response.request.method != "HEAD":
        assert code in error_codes(response), response.text


def assert_api_version(response: httpx.Response) -> None:
    assert response.headers["docker-distribution-api-version"] == "registry/2.0"


def next_link(response: httpx.Response) -> str | None:
    """The target of a `Link: <...>; rel="next"` header, if any."""
    m = re.fullmatch(r'<([^>]+)>;\s*rel="next"', response.headers.get("link", ""))
    return m.group(1) if m else None


def challenge(response: httpx.Response) -> dict[str, str]:
    """The parameters of a `WWW-Authenticate: Bearer k="v",...` challenge."""
    value = response.headers["www-authenticate"]
    assert value.startswith("Bearer "), value
    return dict(re.findall(r'(\w+)="([^"]*)"', value))


def bearer(anonymous: httpx.Client, refused: httpx.Response, user: str, password: str) -> dict[str, str]:
    """The token flow's second step: ask the challenge's realm, with Basic credentials, for a token
    for the challenged service and scope; returns the `Authorization` header for the retry."""
    params = challenge(refused)
    r = anonymous.get(params["realm"], params={"service": params["service"], "scope": params["scope"]},
                      auth=(user, password))
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


# -- content ---------------------------------------------------------------------------------------

def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


def encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


@dataclass
class Manifest:
    """A manifest's exact bytes, with the blobs and child manifests a push must send first."""

    body: bytes
    media_type: str
    blobs: list[bytes] = field(default_factory=list)
    children: list[Manifest] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return sha256(self.body)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return descriptor(self.media_type, self.body, **extra)

    @property
    def doc(self) -> dict[str, Any]:
        return json.loads(self.body)


def image(layers: int = 1, *, media_type: str = OCI_MANIFEST, config: bytes | None = None,
          config_type: str | None = None, layer_type: str | None = None, artifact_type: str | None = None,
          subject: Manifest | None = None, annotations: dict[str, str] | None = None,
          arch: str = "amd64") -> Manifest:
    """An image manifest (OCI or Docker schema 2) over a fresh config and `layers` random layers."""
    default_config, default_layer = IMAGE_PARTS[media_type]
    if config is None:
        config = encode({"architecture": arch, "os": "linux", "nonce": uuid.uuid4().hex})
    blobs = [config] + [random_bytes(256 + 17 * i) for i in range(layers)]
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type}
    if artifact_type:
        doc["artifactType"] = artifact_type
    doc["config"] = descriptor(config_type or default_config, config)
    doc["layers"] = [descriptor(layer_type or default_layer, b) for b in blobs[1:]]
    if subject is not None:
        doc["subject"] = subject.descriptor()
    if annotations:
        doc["annotations"] = annotations
    return Manifest(encode(doc), media_type, blobs)


def index(children: list[Manifest], *, media_type: str = OCI_INDEX, artifact_type: str | None = None,
          subject: Manifest | None = None, annotations: dict[str, str] | None = None) -> Manifest:
    """An OCI index or Docker manifest list over `children`, one platform each."""
    entries = [c.descriptor(platform={"architecture": _arch(c), "os": "linux"}) for c in children]
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type}
    if artifact_type:
        doc["artifactType"] = artifact_type
    doc["manifests"] = entries
    if subject is not None:
        doc["subject"] = subject.descriptor()
    if annotations:
        doc["annotations"] = annotations
    return Manifest(encode(doc), media_type, children=children)


def _arch(child: Manifest) -> str:
    """The architecture an image's config names (amd64 for anything else)."""
    try:
        return json.loads(child.blobs[0])["architecture"]
    except (IndexError, KeyError, ValueError):
        return "amd64"


def platform_images(media_type: str) -> list[Manifest]:
    """One image per platform, for an index or manifest list."""
    return [image(media_type=media_type, arch=arch) for arch in ("amd64", "arm64")]


# -- pushing ---------------------------------------------------------------------------------------

def push_blob(client: httpx.Client, repo: str, data: bytes) -> str:
    """Monolithic upload: one `POST ?digest=` with the whole blob; returns the digest."""
    digest = sha256(data)
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v2/{repo}/blobs/{digest}"
    return digest


def start_upload(client: httpx.Client, repo: str) -> str:
    """Open an upload session; returns its location."""
    r = client.post(f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202, r.text
    assert r.headers["location"].startswith(f"/v2/{repo}/blobs/uploads/")
    return r.headers["location"]


def patch_chunk(client: httpx.Client, location: str, data: bytes, start: int) -> httpx.Response:
    """Send one chunk with its `Content-Range` (the request's `Content-Length` is len(data))."""
    return client.patch(location, content=data, headers={
        "Content-Type": "application/octet-stream", "Content-Range": f"{start}-{start + len(data) - 1}"})


def push_blob_chunked(client: httpx.Client, repo: str, data: bytes, chunk: int) -> str:
    """POST, a PATCH per chunk (each answering 202 with the range so far), PUT ?digest=."""
    location = start_upload(client, repo)
    for start in range(0, len(data), chunk):
        r = patch_chunk(client, location, data[start:start + chunk], start)
        assert r.status_code == 202, r.text
        assert r.headers["range"] == f"0-{min(start + chunk, len(data)) - 1}"
        location = r.headers["location"]
    r = client.put(location, params={"digest": sha256(data)})
    assert r.status_code == 201, r.text
    return sha256(data)


def put_manifest(client: httpx.Client, repo: str, reference: str, manifest: Manifest) -> httpx.Response:
    return client.put(f"/v2/{repo}/manifests/{reference}", content=manifest.body,
                      headers={"Content-Type": manifest.media_type})


def push(client: httpx.Client, repo: str, manifest: Manifest, reference: str | None = None) -> Manifest:
    """Push the blobs, the child manifests (by digest), then the manifest by tag or digest."""
    for blob in manifest.blobs:
        push_blob(client, repo, blob)
    for child in manifest.children:
        push(client, repo, child)
    r = put_manifest(client, repo, reference or manifest.digest, manifest)
    assert r.status_code == 201, r.text
    assert r.headers["docker-content-digest"] == manifest.digest
    assert r.headers["location"] == f"/v2/{repo}/manifests/{manifest.digest}"
    return manifest


# -- looking --------------------------------------------------------------------------------------

def tags(client: httpx.Client, repo: str) -> list[str]:
    r = client.get(f"/v2/{repo}/tags/list")
    assert r.status_code == 200, r.text
    return r.json()["tags"]


def catalog(client: httpx.Client) -> list[str]:
    r = client.get("/v2/_catalog")
    assert r.status_code == 200, r.text
    return r.json()["repositories"]


def upload_sessions(server: Any) -> set[str]:
    """The upload sessions the server's blob store holds (`_uploads/<id>`, see commands/uploads.py):
    read from the filesystem store of a real server's data dir, or from an in-process app's store."""
    if hasattr(server, "services"):  # tests.inprocess.conftest.InProcessServer
        return {key.split("/")[1] for key in server.services.store.list("_uploads")}
    folder = Path(server.data_dir) / "blobs" / "_uploads"
    return set(os.listdir(folder)) if folder.is_dir() else set()
