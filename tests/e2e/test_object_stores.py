"""Dockyard on S3 (moto), Azure (Azurite) and Swift (single node), driven by skopeo and httpx.

One module, parametrized over the backends: a multi-layer image copied in and back byte for
byte by tag and by digest, with its blobs in the object store and none on the disk; a chunked
upload whose PATCHes alternate between two processes, read back whole and by range; a cross-repository mount; a restart;
a SIGKILL in the middle of a push, after which no partial blob is visible and the session
resumes; `redirect=true`, where blob GETs answer 307 to a presigned URL (Swift: a TempURL) that
skopeo follows; a registry migrated from the filesystem to S3 (`dockyard storage migrate`) that still serves
every image; and Settings > Storage changed through one process, followed by another.
Metadata stays on SQLite: PostgreSQL is covered by the other e2e modules, the store is the
variable here.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlparse

import httpx
import pytest

from dockyard.storage import BlobStore, blob_key, open_store
from tests.conftest import ADMIN_PASSWORD
from tests.e2e.clients import Layout, Skopeo, assert_same_image, assert_served, events, make_image, sha256
from tests.e2e.test_chunked import patch, pieces, start
from tests.object_stores import with_env
from tests.server import DockyardServer

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024
BACKENDS = ["s3", "azure", "swift"]


@dataclass
class Target:
    """An object-store location for one Dockyard: its URL and the credentials it needs."""

    backend: str
    url: str
    env: dict[str, str]

    def store(self) -> BlobStore:
        with with_env(self.env):
            return open_store(self.url)


def new_target(backend: str, request: pytest.FixtureRequest, **params: str) -> Target:
    """A fresh bucket or container on the session's server for `backend`."""
    if backend == "s3":
        s3 = request.getfixturevalue("moto_s3")
        return Target(backend, s3.url(s3.new_bucket(), "dockyard", **params), s3.env)
    if backend == "azure":
        azurite = request.getfixturevalue("azurite")
        return Target(backend, azurite.url(azurite.new_container(), "dockyard", **params), azurite.env)
    swift = request.getfixturevalue("swift")
    return Target(backend, swift.url(swift.new_container(), "dockyard", **params), swift.env)


def serve(target: Target, data_dir) -> DockyardServer:  # noqa: ANN001 - a Path
    server = DockyardServer(data_dir, None, ADMIN_PASSWORD, extra_env={"DOCKYARD_STORAGE": target.url, **target.env})
    server.start()
    return server


@pytest.fixture(scope="module", params=BACKENDS)
def target(request: pytest.FixtureRequest) -> Target:
    return new_target(request.param, request)


@pytest.fixture(scope="module")
def server(target: Target, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    srv = serve(target, tmp_path_factory.mktemp(f"dockyard-{target.backend}") / "data")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Layout]:
    base = tmp_path_factory.mktemp("object-store-images")
    return {
        # 9 MiB: more than one 8 MiB part, block or segment.
        "a": make_image(base / "a", ["4K", "1M", "9M"], seed="objstore-a", tag="v1"),
        "b": make_image(base / "b", ["16K", "512K"], seed="objstore-b", tag="v2"),
    }


@pytest.fixture
def skopeo(server: DockyardServer, tmp_path) -> Skopeo:  # noqa: ANN001
    return Skopeo(server, tmp_path / "skopeo")


def test_round_trip_by_tag_and_digest(skopeo: Skopeo, server: DockyardServer, target: Target, images,
                                      tmp_path) -> None:  # noqa: ANN001
    image = images["a"]
    skopeo.copy(image.ref, skopeo.docker("admin/store-roundtrip", "v1"))

    # Back out by tag and by digest, byte for byte.
    for name, reference in (("by-tag", "v1"), ("by-digest", image.digest)):
        back = Layout(tmp_path / name, "pulled")
        skopeo.copy(skopeo.docker("admin/store-roundtrip", reference), back.ref)
        assert_same_image(image, back)

    # The blobs live in the object store, whole, and nothing went to the data directory.
    store = target.store()
    for digest in image.referenced()[1:] + [image.manifest["config"]["digest"]]:
        assert hashlib.sha256(store.read_bytes(blob_key(digest))).hexdigest() == digest.split(":")[1]
    assert not (server.data_dir / "blobs").exists() or not any((server.data_dir / "blobs").rglob("*"))
    assert list(store.list("_uploads")) == []


def test_chunked_upload_alternating_between_two_processes(server: DockyardServer, target: Target) -> None:
    # A second process on the same data directory and the same object store.
    second = DockyardServer(server.data_dir, None, ADMIN_PASSWORD,
                            extra_env={"DOCKYARD_STORAGE": target.url, **target.env})
    second.start()
    clients = [server.client(), second.client()]
    try:
        data = os.urandom(6 * MiB + 4321)
        location = start(clients[0], "admin/store-chunked")
        offset = 0
        for i, chunk in enumerate(pieces(data, 5)):  # one piece over a part: parts and small tails
            location = patch(clients[i % 2], location, chunk, offset)
            offset += len(chunk)
        for http in clients:
            assert http.get(location).headers["range"] == f"0-{len(data) - 1}"
        r = clients[1].put(location, params={"digest": sha256(data)})
        assert r.status_code == 201, r.text
        path = f"/v2/admin/store-chunked/blobs/{sha256(data)}"
        for http in clients:
            blob = http.get(path)
            assert blob.status_code == 200 and blob.content == data
        # A resumed pull reads from the store's own offset: across a part's end, and the tail.
        for first, last in ((5 * MiB - 10, 5 * MiB + 10), (len(data) - 100, len(data) - 1)):
            r = clients[0].get(path, headers={"Range": f"bytes={first}-{last}"})
            assert r.status_code == 206 and r.content == data[first:last + 1], (first, last, r.status_code)
            assert r.headers["content-range"] == f"bytes {first}-{last}/{len(data)}"
    finally:
        for http in clients:
            http.close()
        second.stop()


def test_cross_repository_mount(skopeo: Skopeo, images, tmp_path) -> None:  # noqa: ANN001
    image = images["b"]
    skopeo.copy(image.ref, skopeo.docker("admin/store-mount-src", "v2"))
    skopeo.copy(skopeo.docker("admin/store-mount-src", "v2"), skopeo.docker("admin/store-mount-dst", "v2"))
    back = Layout(tmp_path / "back", "x")
    skopeo.copy(skopeo.docker("admin/store-mount-dst", "v2"), back.ref)
    assert_same_image(image, back)

    # Every layer of the target was linked by a mount, not uploaded again.
    linked = {e["digest"]: e["source"] for e in events(skopeo.server)
              if e["topic"] == "dockyard.BlobLink.Linked" and e["repository"] == "admin/store-mount-dst"}
    assert all(linked.get(d, "").startswith("mount:admin/") for d in image.referenced()[1:]), linked


def test_served_after_restart(skopeo: Skopeo, server: DockyardServer, images, tmp_path) -> None:  # noqa: ANN001
    skopeo.copy(images["b"].ref, skopeo.docker("admin/store-restart", "v2"))
    server.restart()
    with server.client() as http:
        assert_served(http, "admin/store-restart", images["b"], "v2")
    back = Layout(tmp_path / "back", "x")
    skopeo.copy(skopeo.docker("admin/store-restart", "v2"), back.ref)
    assert_same_image(images["b"], back)


def test_sigkill_during_a_push_leaves_no_partial_blob(server: DockyardServer, target: Target) -> None:
    data = os.urandom(20 * MiB)
    digest = sha256(data)
    halfway, release = threading.Event(), threading.Event()
    http = server.client()
    location = start(http, "admin/store-killed")

    def body() -> Iterator[bytes]:
        for i, piece in enumerate(pieces(data, 20)):
            if i == 12:  # 12 MiB sent (parts, blocks or segments already up): hold here
                halfway.set()
                release.wait(60)
            yield piece

    def push() -> None:
        try:
            http.patch(location, content=body(), headers={"Content-Type": "application/octet-stream"})
        except httpx.HTTPError:
            pass  # the server died under it

    pusher = threading.Thread(target=push)
    pusher.start()
    try:
        assert halfway.wait(60)
        server.kill()
    finally:
        release.set()
        pusher.join(60)
        http.close()

    # Nothing of the blob is visible: not under its digest, not in the session; every blob
    # in the store hashes to its name.
    store = target.store()
    assert not store.exists(blob_key(digest))
    upload_id = urlparse(location).path.rsplit("/", 1)[1]
    assert store.stat(f"_uploads/{upload_id}/data") == 0
    for key in store.list("blobs"):
        assert hashlib.sha256(store.read_bytes(key)).hexdigest() == key.rsplit("/", 1)[1]

    # After a restart the session resumes from the size it reports, and the push completes.
    server.start()
    with server.client() as http:
        status = http.get(location)
        assert status.status_code == 204 and status.headers["range"] == "0-0"
        location = patch(http, location, data, 0)
        assert http.put(location, params={"digest": digest}).status_code == 201
        assert http.get(f"/v2/admin/store-killed/blobs/{digest}").content == data


@pytest.mark.parametrize("backend", BACKENDS)
def test_redirect_to_presigned_urls(backend: str, request: pytest.FixtureRequest, images, tmp_path) -> None:  # noqa: ANN001
    target = new_target(backend, request, redirect="true")
    if backend == "swift":  # Swift signs TempURLs with a key the operator sets on the container
        container = urlparse(target.url).netloc
        request.getfixturevalue("swift").connection().post_container(
            container, {"X-Container-Meta-Temp-URL-Key": "e2e-key"})
    srv = serve(target, tmp_path / "data")
    try:
        skopeo = Skopeo(srv, tmp_path / "skopeo")
        image = images["a"]
        skopeo.copy(image.ref, skopeo.docker("admin/store-redirect", "v1"))

        # A blob GET answers 307 to the object store itself; HEAD still answers here.
        layer = image.referenced()[-1]
        with srv.client() as http:
            r = http.get(f"/v2/admin/store-redirect/blobs/{layer}", follow_redirects=False)
            assert r.status_code == 307
            assert urlparse(r.headers["location"]).port != srv.port
            assert httpx.get(r.headers["location"]).content == image.blob(layer)
            assert http.head(f"/v2/admin/store-redirect/blobs/{layer}").status_code == 200

        # skopeo follows the redirects: the image comes back byte for byte.
        back = Layout(tmp_path / "back", "x")
        skopeo.copy(skopeo.docker("admin/store-redirect", "v1"), back.ref)
        assert_same_image(image, back)
    finally:
        srv.stop()


def test_migration_from_the_filesystem_to_s3(request: pytest.FixtureRequest, images, tmp_path) -> None:  # noqa: ANN001
    import shutil
    import subprocess
    import sys

    # A registry on the filesystem, serving all along: one image pushed before the migration.
    data_dir = tmp_path / "data"
    before = DockyardServer(data_dir, None, ADMIN_PASSWORD)
    before.start()
    target = new_target("s3", request)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}, **target.env}

    def migrate() -> str:
        done = subprocess.run([sys.executable, "-m", "dockyard", "storage", "migrate", "--data-dir", str(data_dir),
                               "--to", target.url], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0 and "0 failed" in done.stderr, done.stderr
        return done.stderr.strip().splitlines()[-1]

    try:
        skopeo = Skopeo(before, tmp_path / "skopeo-before")
        skopeo.copy(images["a"].ref, skopeo.docker("admin/migrated-a", images["a"].tag))

        # `dockyard storage migrate` while the registry serves; a push meanwhile; run again, it
        # copies only what is new (the first image's blobs are already there).
        first = migrate()  # "copied N blob(s) (X MiB), M already there, 0 failed"
        copied = int(first.split()[1])
        assert copied >= len(images["a"].referenced()) and ", 0 already there" in first, first
        skopeo.copy(images["b"].ref, skopeo.docker("admin/migrated-b", images["b"].tag))
        second = migrate()
        assert f", {copied} already there, 0 failed" in second and int(second.split()[1]) >= 2, second
    finally:
        before.stop()
    shutil.rmtree(data_dir / "blobs")  # the filesystem copy is gone

    # Restarted on S3 with the same metadata, every image pulls byte for byte.
    after = serve(target, data_dir)
    try:
        skopeo = Skopeo(after, tmp_path / "skopeo-after")
        for name, image in images.items():
            back = Layout(tmp_path / f"back-{name}", "x")
            skopeo.copy(skopeo.docker(f"admin/migrated-{name}", image.tag), back.ref)
            assert_same_image(image, back)
    finally:
        after.stop()


def test_a_storage_setting_reaches_every_process(request: pytest.FixtureRequest, tmp_path) -> None:  # noqa: ANN001
    import time

    # Two processes on one data directory, both on the filesystem they were started with.
    first = DockyardServer(tmp_path / "data", None, ADMIN_PASSWORD)
    first.start()
    second = DockyardServer(tmp_path / "data", None, ADMIN_PASSWORD)
    second.start()
    try:
        # An admin moves the registry to S3 through the first process.
        target = new_target("s3", request)
        with first.client() as http:
            answer = http.put("/api/v0/settings/storage", json={"url": target.url, "credentials": target.env})
            assert answer.status_code == 200, answer.text
        store = target.store()

        # The second process follows without a restart: within its 5 s check, what it receives
        # goes to S3 (polled, bounded).
        deadline, landed = time.monotonic() + 30, False
        with second.client() as http:
            while not landed and time.monotonic() < deadline:
                data = os.urandom(64)
                assert http.post("/v2/admin/switch/blobs/uploads/", params={"digest": sha256(data)},
                                 content=data).status_code == 201
                landed = store.exists(blob_key(sha256(data)))
                if not landed:
                    time.sleep(0.5)
        assert landed, "the second process never switched to the new store"
    finally:
        second.stop()
        first.stop()
