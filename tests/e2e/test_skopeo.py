"""skopeo against the real server: copy in and back byte for byte, delete, cross-repository copy
(blob mounts), list-tags, login, and a restart on the same data."""

from __future__ import annotations

import json

import pytest

from tests.e2e.clients import (
    Layout,
    Skopeo,
    assert_same_image,
    assert_served,
    events,
    get_manifest,
    make_image,
    make_index,
    sha256,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Layout]:
    """Three multi-layer gzip images, made once: two share nothing, `c` shares a layer size only."""
    base = tmp_path_factory.mktemp("skopeo-images")
    return {
        "a": make_image(base / "a", ["4K", "64K", "1M"], seed="skopeo-a", tag="v1"),
        "b": make_image(base / "b", ["16K", "512K"], seed="skopeo-b", tag="v2"),
        "c": make_image(base / "c", ["8K", "256K", "2M"], seed="skopeo-c", tag="v3"),
    }


@pytest.fixture
def skopeo(shared_server, tmp_path) -> Skopeo:
    return Skopeo(shared_server, tmp_path / "skopeo")


def test_copy_in_and_back_by_tag_and_digest(skopeo: Skopeo, images, tmp_path) -> None:
    image = images["a"]
    skopeo.copy(image.ref, skopeo.docker("admin/skopeo-roundtrip", "v1"))

    # The registry stores the manifest byte for byte, under the digest of those bytes.
    assert skopeo.inspect_raw(skopeo.docker("admin/skopeo-roundtrip", "v1")) == image.manifest_bytes
    with skopeo.server.client() as http:
        assert_served(http, "admin/skopeo-roundtrip", image, "v1")

    by_tag = Layout(tmp_path / "by-tag", "pulled")
    skopeo.copy(skopeo.docker("admin/skopeo-roundtrip", "v1"), by_tag.ref)
    assert_same_image(image, by_tag)

    by_digest = Layout(tmp_path / "by-digest", "pulled")
    skopeo.copy(skopeo.docker("admin/skopeo-roundtrip", image.digest), by_digest.ref)
    assert_same_image(image, by_digest)


def test_push_by_digest(skopeo: Skopeo, images, tmp_path) -> None:
    image = images["b"]
    skopeo.copy(image.ref, skopeo.docker("admin/skopeo-by-digest", image.digest))
    back = Layout(tmp_path / "back", "x")
    skopeo.copy(skopeo.docker("admin/skopeo-by-digest", image.digest), back.ref)
    assert_same_image(image, back)
    assert skopeo.list_tags("admin/skopeo-by-digest") == []  # a push by digest moves no tag


def test_multi_platform_index(skopeo: Skopeo, images, tmp_path) -> None:
    index = make_index(tmp_path / "index", {"amd64": images["a"], "arm64": images["b"]}, "multi")
    skopeo.copy(index.ref, skopeo.docker("admin/skopeo-index", "multi"), "--all")
    assert skopeo.inspect_raw(skopeo.docker("admin/skopeo-index", "multi")) == index.manifest_bytes

    everything = Layout(tmp_path / "all", "multi")
    skopeo.copy(skopeo.docker("admin/skopeo-index", "multi"), everything.ref, "--all")
    assert_same_image(index, everything)
    for architecture, image in (("amd64", images["a"]), ("arm64", images["b"])):
        one = Layout(tmp_path / architecture, "one")
        skopeo.copy(skopeo.docker("admin/skopeo-index", "multi"), one.ref, f"--override-arch={architecture}")
        assert_same_image(image, one)


def test_docker_schema2(skopeo: Skopeo, images, tmp_path) -> None:
    digestfile = tmp_path / "digest"
    skopeo.copy(images["b"].ref, skopeo.docker("admin/skopeo-v2s2", "v2"), "--format=v2s2", f"--digestfile={digestfile}",
                preserve_digests=False)
    raw = skopeo.inspect_raw(skopeo.docker("admin/skopeo-v2s2", "v2"))
    manifest = json.loads(raw)
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert sha256(raw) == digestfile.read_text().strip()
    with skopeo.server.client() as http:
        r = get_manifest(http, "admin/skopeo-v2s2", "v2")
        assert r.headers["content-type"] == manifest["mediaType"]
        assert r.headers["docker-content-digest"] == sha256(raw)
        for descriptor in [manifest["config"], *manifest["layers"]]:  # the same blobs, relabelled
            assert http.get(f"/v2/admin/skopeo-v2s2/blobs/{descriptor['digest']}").content == \
                images["b"].blob(descriptor["digest"])


def test_list_tags(skopeo: Skopeo, images) -> None:
    repo = "admin/skopeo-tags"
    for tag in ("v2", "latest", "1.0"):
        skopeo.copy(images["b"].ref, skopeo.docker(repo, tag))
    skopeo.copy(images["a"].ref, skopeo.docker(repo, "other"))
    assert sorted(skopeo.list_tags(repo)) == ["1.0", "latest", "other", "v2"]
    never_pushed = skopeo.list_tags("admin/skopeo-never-pushed", check=False)
    assert never_pushed is None


def test_delete(skopeo: Skopeo, images) -> None:
    image = images["c"]
    for repo in ("admin/skopeo-delete", "admin/skopeo-keep"):
        skopeo.copy(image.ref, skopeo.docker(repo, "v3"))
    skopeo.copy(images["b"].ref, skopeo.docker("admin/skopeo-delete", "v2"))

    skopeo.delete(skopeo.docker("admin/skopeo-delete", "v3"))

    with skopeo.server.client() as http:
        for reference in ("v3", image.digest):
            r = get_manifest(http, "admin/skopeo-delete", reference)
            assert r.status_code == 404, r.text
            assert r.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
        # Other images of the repository, and the same image in another repository, stay.
        assert_served(http, "admin/skopeo-delete", images["b"], "v2")
        assert_served(http, "admin/skopeo-keep", image, "v3")
    assert skopeo.list_tags("admin/skopeo-delete") == ["v2"]
    failed = skopeo.copy(skopeo.docker("admin/skopeo-delete", "v3"), "oci:" + str(skopeo.home / "gone") + ":x",
                         check=False)
    assert failed.returncode != 0
    assert "manifest unknown" in failed.stderr.lower()


def test_copy_between_repositories_mounts_blobs(skopeo: Skopeo, images, tmp_path) -> None:
    image = images["a"]
    source, target = "admin/skopeo-mount-src", "admin/skopeo-mount-dst"
    skopeo.copy(image.ref, skopeo.docker(source, "v1"))
    skopeo.copy(skopeo.docker(source, "v1"), skopeo.docker(target, "copied"))

    back = Layout(tmp_path / "back", "x")
    skopeo.copy(skopeo.docker(target, "copied"), back.ref)
    assert_same_image(image, back)
    with skopeo.server.client() as http:
        for digest in image.referenced():
            head = http.head(f"/v2/{target}/blobs/{digest}")
            assert head.status_code == 200
            assert int(head.headers["content-length"]) == len(image.blob(digest))

    # skopeo asks to mount blobs it knows the registry holds: the log shows every layer of the
    # target linked by a mount, none uploaded again. The mount is usually from `source`, but
    # skopeo's blob-info cache is machine-wide (as root) and may pick another repository of this
    # server that other tests filled with the same image.
    linked = {e["digest"]: e["source"] for e in events(skopeo.server)
              if e["topic"] == "dockyard.BlobLink.Linked" and e["repository"] == target}
    layers = image.referenced()[1:]
    assert all(linked.get(d, "").startswith("mount:admin/") for d in layers), linked
    assert set(linked) == set(image.referenced())


def test_login(shared_server, images, tmp_path) -> None:
    skopeo = Skopeo(shared_server, tmp_path / "skopeo")
    skopeo.copy(images["b"].ref, skopeo.docker("admin/skopeo-login", "v2"))

    wrong = skopeo.login(password="not-the-password", check=False)
    assert wrong.returncode != 0
    assert "invalid username/password" in wrong.stderr
    assert not skopeo.authfile.exists() or shared_server.host not in skopeo.authfile.read_text()
    assert skopeo.list_tags("admin/skopeo-login", creds=False, check=False) is None  # anonymous: denied

    assert "Login Succeeded" in skopeo.login().stdout
    assert shared_server.host in json.loads(skopeo.authfile.read_text())["auths"]
    # Later commands authenticate from the auth file alone.
    assert skopeo.list_tags("admin/skopeo-login", creds=False) == ["v2"]
    assert skopeo.inspect_raw(skopeo.docker("admin/skopeo-login", "v2"), creds=False) == images["b"].manifest_bytes

    skopeo.logout()
    assert skopeo.list_tags("admin/skopeo-login", creds=False, check=False) is None


def test_everything_served_after_restart(shared_server, images, tmp_path) -> None:
    """Restarts the module's server (last in the module, so the others ran on the first process)."""
    server = shared_server
    skopeo = Skopeo(server, tmp_path / "skopeo")
    skopeo.copy(images["a"].ref, skopeo.docker("admin/restart", "v1"))
    skopeo.copy(images["b"].ref, skopeo.docker("admin/restart", "v2"))
    skopeo.copy(skopeo.docker("admin/restart", "v1"), skopeo.docker("admin/restart-copy", "v1"))
    skopeo.copy(images["c"].ref, skopeo.docker("admin/restart", "doomed"))
    skopeo.delete(skopeo.docker("admin/restart", "doomed"))
    assert skopeo.login().returncode == 0

    server.restart()

    assert sorted(skopeo.list_tags("admin/restart", creds=False)) == ["v1", "v2"]  # the auth file still works
    for repo, image, tag in (("admin/restart", images["a"], "v1"), ("admin/restart", images["b"], "v2"),
                             ("admin/restart-copy", images["a"], "v1")):
        pulled = Layout(tmp_path / f"{repo.replace('/', '_')}-{tag}", tag)
        skopeo.copy(skopeo.docker(repo, tag), pulled.ref)
        assert_same_image(image, pulled)
    with server.client() as http:
        assert get_manifest(http, "admin/restart", images["c"].digest).status_code == 404
    # And it takes new pushes.
    skopeo.copy(images["c"].ref, skopeo.docker("admin/restart", "after"))
    again = Layout(tmp_path / "after", "after")
    skopeo.copy(skopeo.docker("admin/restart", "after"), again.ref)
    assert_same_image(images["c"], again)
