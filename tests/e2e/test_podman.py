"""podman against the real server: login, push, pull by tag and by digest.

What works for podman 4.3.1 as root on this machine (Debian 12, no Docker, no systemd session):
- Everything tested here: `podman login`/`logout`, `pull` by tag and digest, `pull oci:DIR:TAG`
  to get an image into podman's storage, `push` (with `--digestfile`), `image inspect`, `rmi`.
  Each test gives podman its own `--root`, `--runroot` and `--tmpdir` in the test's tmp dir,
  `--storage-driver vfs` (overlay works too as root, vfs needs no mounts to clean up) and
  `--events-backend none`, plus its own `REGISTRY_AUTH_FILE`, so no test touches root's
  `/var/lib/containers/storage` or `/run/containers/0/auth.json`.
- What does not work here, and is not tested: `podman run` of any image fails with
  `crun: setrlimit RLIMIT_NOFILE: Operation not permitted: OCI permission denied` (the sandbox
  this machine runs in does not let root raise that limit). Nothing registry-related needs it.
- Not isolated: containers/image keeps its blob-info cache in
  `/var/lib/containers/cache/blob-info-cache-v1.boltdb` for root whatever `--root` says. It only
  remembers which digests were seen at which registry host:port, and every test server has a
  fresh port, so at most it makes podman try a cross-repository mount it would otherwise not.

`podman push` from its own storage may recompress layers (their digests then differ from the
OCI layout's), so pushed images are checked by what stays fixed: the config blob byte for byte
(the image ID is its digest), and every layer uncompressing to the config's diff_id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.e2e.clients import (
    Layout,
    Podman,
    Skopeo,
    assert_layers_match_diff_ids,
    get_manifest,
    make_image,
    sha256,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Layout:
    return make_image(tmp_path_factory.mktemp("podman-image") / "img", ["8K", "128K", "1M"], seed="podman", tag="v1")


@pytest.fixture
def podman(shared_server, tmp_path) -> Iterator[Podman]:
    client = Podman(shared_server, tmp_path / "podman")
    yield client
    client.close()


def assert_registry_has_image(podman: Podman, repository: str, reference: str, image: Layout) -> str:
    """The registry serves, under `reference`, an image with `image`'s config and layer contents."""
    with podman.server.client() as http:
        r = get_manifest(http, repository, reference)
        assert r.status_code == 200, r.text
        assert sha256(r.content) == r.headers["docker-content-digest"]
        manifest = json.loads(r.content)
        blobs = {}
        for descriptor in [manifest["config"], *manifest["layers"]]:
            b = http.get(f"/v2/{repository}/blobs/{descriptor['digest']}")
            assert b.status_code == 200, b.text
            assert sha256(b.content) == descriptor["digest"]
            assert len(b.content) == descriptor["size"]
            blobs[descriptor["digest"]] = b.content
    assert blobs[manifest["config"]["digest"]] == image.config_bytes
    assert_layers_match_diff_ids(image.config_bytes, [blobs[d["digest"]] for d in manifest["layers"]])
    return r.headers["docker-content-digest"]


def test_login_and_logout(podman: Podman) -> None:
    wrong = podman.login(password="not-the-password", check=False)
    assert wrong.returncode != 0
    assert "invalid username/password" in wrong.stderr

    assert "Login Succeeded" in podman.login().stdout
    assert podman.server.host in json.loads(podman.authfile.read_text())["auths"]
    podman.logout()
    assert podman.server.host not in json.loads(podman.authfile.read_text())["auths"]
    denied = podman.pull(podman.ref("admin/podman-nothing", "v1"), check=False)
    assert denied.returncode != 0


def test_push_then_pull_by_tag_and_digest(podman: Podman, image: Layout) -> None:
    podman.login()
    pulled = podman.pull(image.ref)  # from the OCI layout into podman's storage
    image_id = "sha256:" + pulled.stdout.split()[-1]
    assert image_id == image.manifest["config"]["digest"]
    assert podman.run("images", "--quiet", "--no-trunc").stdout.split() == [image_id]

    target = podman.ref("admin/podman-push", "v1")
    podman.run("tag", image_id, target)
    pushed = podman.push(target, target)
    assert assert_registry_has_image(podman, "admin/podman-push", "v1", image) == pushed
    assert_registry_has_image(podman, "admin/podman-push", pushed, image)

    podman.remove_all()
    podman.pull(target)
    assert podman.image_id(target) == image_id
    assert podman.ref("admin/podman-push", pushed) in podman.inspect(target)["RepoDigests"]

    podman.remove_all()
    by_digest = podman.ref("admin/podman-push", pushed)
    podman.pull(by_digest)
    assert podman.image_id(by_digest) == image_id


def test_pull_what_skopeo_pushed_and_push_it_elsewhere(podman: Podman, image: Layout, tmp_path) -> None:
    skopeo = Skopeo(podman.server, tmp_path / "skopeo")
    skopeo.copy(image.ref, skopeo.docker("admin/podman-from-skopeo", "v1"))
    podman.login()

    podman.pull(podman.ref("admin/podman-from-skopeo", image.digest))
    assert podman.image_id(podman.ref("admin/podman-from-skopeo", image.digest)) == image.manifest["config"]["digest"]
    podman.pull(podman.ref("admin/podman-from-skopeo", "v1"))
    inspected = podman.inspect(podman.ref("admin/podman-from-skopeo", "v1"))
    assert inspected["Digest"] == image.digest
    assert inspected["RootFS"]["Layers"] == json.loads(image.config_bytes)["rootfs"]["diff_ids"]

    # Re-push under a new repository and tag; skopeo reads it back unchanged in content.
    target = podman.ref("admin/podman-repush", "again")
    podman.run("tag", podman.ref("admin/podman-from-skopeo", "v1"), target)
    pushed = podman.push(target, target)
    assert assert_registry_has_image(podman, "admin/podman-repush", "again", image) == pushed
    assert skopeo.list_tags("admin/podman-repush") == ["again"]
