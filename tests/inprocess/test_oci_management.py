"""OCI distribution spec v1.1, "Content management": deleting manifests (by digest, with every
tag on them), tags, and blobs; afterwards each answers 404 with the right code, at once.
"""

from __future__ import annotations

import httpx

from tests.integration.oci_client import (  # noqa: F401 - `client` is a fixture
    EMPTY_JSON,
    OCI_EMPTY,
    assert_error,
    client,
    image,
    push,
    push_blob,
    put_manifest,
    random_bytes,
    sha256,
    tags,
    unique_repo,
)


def assert_manifest_gone(client: httpx.Client, repo: str, reference: str) -> None:
    assert_error(client.get(f"/v2/{repo}/manifests/{reference}"), 404, "MANIFEST_UNKNOWN")
    assert client.head(f"/v2/{repo}/manifests/{reference}").status_code == 404


def test_delete_manifest_by_digest_removes_the_tags_on_it(client) -> None:
    repo = unique_repo("delmanifest")
    doomed, kept = push(client, repo, image(), "a1"), push(client, repo, image(), "b1")
    assert put_manifest(client, repo, "a2", doomed).status_code == 201
    r = client.delete(f"/v2/{repo}/manifests/{doomed.digest}")
    assert r.status_code == 202, r.text
    for reference in (doomed.digest, "a1", "a2"):
        assert_manifest_gone(client, repo, reference)
    assert tags(client, repo) == ["b1"]
    assert client.get(f"/v2/{repo}/manifests/b1").content == kept.body
    # The layers stay until garbage collection finds nothing needs them.
    assert client.get(f"/v2/{repo}/blobs/{sha256(doomed.blobs[1])}").content == doomed.blobs[1]
    assert_error(client.delete(f"/v2/{repo}/manifests/{doomed.digest}"), 404, "MANIFEST_UNKNOWN")


def test_delete_tag_keeps_the_manifest(client) -> None:
    repo = unique_repo("deltag")
    m = push(client, repo, image(), "t1")
    assert put_manifest(client, repo, "t2", m).status_code == 201
    r = client.delete(f"/v2/{repo}/manifests/t1")
    assert r.status_code == 202, r.text
    assert_manifest_gone(client, repo, "t1")
    assert tags(client, repo) == ["t2"]
    assert client.get(f"/v2/{repo}/manifests/t2").content == m.body
    assert client.get(f"/v2/{repo}/manifests/{m.digest}").content == m.body
    assert_error(client.delete(f"/v2/{repo}/manifests/t1"), 404, "MANIFEST_UNKNOWN")


def test_deleted_manifest_can_be_pushed_again(client) -> None:
    repo = unique_repo("repush")
    m = push(client, repo, image(), "v1")
    assert client.delete(f"/v2/{repo}/manifests/{m.digest}").status_code == 202
    assert_manifest_gone(client, repo, "v1")
    push(client, repo, m, "v1")
    assert client.get(f"/v2/{repo}/manifests/v1").content == m.body
    assert tags(client, repo) == ["v1"]


def test_delete_blob_in_one_repository_only(client) -> None:
    repo, other = unique_repo("delblob"), unique_repo("keepblob")
    data = random_bytes(512)
    digest = sha256(data)
    assert client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data).status_code == 201
    assert client.post(f"/v2/{other}/blobs/uploads/", params={"mount": digest, "from": repo}).status_code == 201
    r = client.delete(f"/v2/{repo}/blobs/{digest}")
    assert r.status_code == 202, r.text
    assert_error(client.get(f"/v2/{repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert client.head(f"/v2/{repo}/blobs/{digest}").status_code == 404
    assert_error(client.delete(f"/v2/{repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert client.get(f"/v2/{other}/blobs/{digest}").content == data
    # A deleted blob can no longer be named by a new manifest in that repository.
    m = image(config=data)
    push_blob(client, repo, m.blobs[1])
    assert_error(put_manifest(client, repo, "v1", m), 400, "MANIFEST_BLOB_UNKNOWN")


def test_delete_unknown_manifest_or_tag(client) -> None:
    repo = unique_repo("delunknown")
    push(client, repo, image(), "v1")
    assert_error(client.delete(f"/v2/{repo}/manifests/{sha256(random_bytes(16))}"), 404, "MANIFEST_UNKNOWN")
    assert_error(client.delete(f"/v2/{repo}/manifests/no-such-tag"), 404, "MANIFEST_UNKNOWN")
    assert tags(client, repo) == ["v1"]


def test_deleted_referrer_leaves_the_referrers_list(client) -> None:
    repo = unique_repo("delref")
    subject = push(client, repo, image(), "v1")
    sbom = push(client, repo, image(config=EMPTY_JSON, config_type=OCI_EMPTY,
                                    artifact_type="application/vnd.example.sbom", subject=subject))
    listing = client.get(f"/v2/{repo}/referrers/{subject.digest}").json()["manifests"]
    assert [d["digest"] for d in listing] == [sbom.digest]
    assert client.delete(f"/v2/{repo}/manifests/{sbom.digest}").status_code == 202
    assert client.get(f"/v2/{repo}/referrers/{subject.digest}").json()["manifests"] == []
    assert_manifest_gone(client, repo, sbom.digest)
