"""OCI distribution spec v1.1, "Pull": manifests by tag and digest with Accept negotiation, blobs
whole and by range, the headers clients rely on, and the Docker token flow a real client follows.
"""

from __future__ import annotations

import pytest

from tests.integration.oci_client import (  # noqa: F401 - `client` is a fixture
    DOCKER_LIST,
    DOCKER_MANIFEST,
    INDEX_OF,
    OCI_INDEX,
    OCI_MANIFEST,
    assert_api_version,
    assert_error,
    bearer,
    challenge,
    client,
    image,
    index,
    platform_images,
    push,
    push_blob,
    random_bytes,
    sha256,
    unique_repo,
)


@pytest.mark.parametrize("media_type", [OCI_MANIFEST, DOCKER_MANIFEST])
def test_manifest_by_tag_and_digest_is_the_exact_bytes_pushed(client, media_type) -> None:
    repo = unique_repo("pull")
    m = push(client, repo, image(layers=2, media_type=media_type), "v1")
    for reference in ("v1", m.digest):
        r = client.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": media_type})
        assert r.status_code == 200, r.text
        assert r.content == m.body
        assert r.headers["content-type"] == media_type
        assert r.headers["content-length"] == str(len(m.body))
        assert r.headers["docker-content-digest"] == m.digest
        assert_api_version(r)


def test_manifest_head_has_the_get_headers_and_no_body(client) -> None:
    repo = unique_repo("pull")
    m = push(client, repo, image(), "v1")
    for reference in ("v1", m.digest):
        r = client.head(f"/v2/{repo}/manifests/{reference}", headers={"Accept": OCI_MANIFEST})
        assert r.status_code == 200
        assert r.content == b""
        assert r.headers["content-type"] == OCI_MANIFEST
        assert r.headers["content-length"] == str(len(m.body))
        assert r.headers["docker-content-digest"] == m.digest


def test_accept_negotiation(client) -> None:
    repo = unique_repo("accept")
    m = push(client, repo, image(), "v1")
    path = f"/v2/{repo}/manifests/v1"
    accepted = [
        [("Accept", OCI_INDEX), ("Accept", OCI_MANIFEST)],  # one header per type, as Go clients send
        [("Accept", f"{DOCKER_MANIFEST}, {OCI_MANIFEST};q=0.9")],
        [("Accept", "*/*")],
    ]
    for accept in accepted:
        r = client.get(path, headers=accept)
        assert r.status_code == 200, (accept, r.text)
        assert r.content == m.body
    # A client that cannot read the stored type is not handed it.
    refused = [("Accept", DOCKER_MANIFEST), ("Accept", DOCKER_LIST)]
    assert_error(client.get(path, headers=refused), 404, "MANIFEST_UNKNOWN")
    assert client.head(path, headers=refused).status_code == 404


@pytest.mark.parametrize("media_type", [OCI_MANIFEST, DOCKER_MANIFEST])
def test_index_then_each_platform_manifest_then_its_blobs(client, media_type) -> None:
    """What `docker pull` of a multi-platform image does: list, then the platform's image, then blobs."""
    repo = unique_repo("multi")
    images = platform_images(media_type)
    listing = push(client, repo, index(images, media_type=INDEX_OF[media_type]), "multi")
    r = client.get(f"/v2/{repo}/manifests/multi", headers={"Accept": INDEX_OF[media_type]})
    assert r.status_code == 200
    assert r.content == listing.body
    assert r.headers["content-type"] == INDEX_OF[media_type]
    entries = r.json()["manifests"]
    assert [e["platform"]["architecture"] for e in entries] == ["amd64", "arm64"]
    for entry, expected in zip(entries, images, strict=True):
        r = client.get(f"/v2/{repo}/manifests/{entry['digest']}", headers={"Accept": entry["mediaType"]})
        assert r.status_code == 200
        assert r.content == expected.body
        doc = r.json()
        for desc, blob in zip([doc["config"], *doc["layers"]], expected.blobs, strict=True):
            b = client.get(f"/v2/{repo}/blobs/{desc['digest']}")
            assert b.status_code == 200
            assert b.content == blob
            assert sha256(b.content) == desc["digest"]


def test_blob_get_and_head(client) -> None:
    repo = unique_repo("blob")
    data = random_bytes(3000)
    digest = push_blob(client, repo, data)
    r = client.get(f"/v2/{repo}/blobs/{digest}")
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["docker-content-digest"] == digest
    assert r.headers["content-length"] == "3000"
    assert_api_version(r)
    r = client.head(f"/v2/{repo}/blobs/{digest}")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == "3000"
    assert r.headers["docker-content-digest"] == digest


def test_unknown_manifests_and_blobs_are_404(client) -> None:
    repo = unique_repo("missing")
    push(client, repo, image(), "v1")
    absent = sha256(random_bytes(32))
    for reference in ("no-such-tag", absent):
        assert_error(client.get(f"/v2/{repo}/manifests/{reference}"), 404, "MANIFEST_UNKNOWN")
        assert client.head(f"/v2/{repo}/manifests/{reference}").status_code == 404
    assert_error(client.get(f"/v2/{repo}/blobs/{absent}"), 404, "BLOB_UNKNOWN")
    r = client.head(f"/v2/{repo}/blobs/{absent}")
    assert r.status_code == 404
    assert r.content == b""


def test_content_is_pulled_only_from_the_repository_holding_it(client) -> None:
    holder, other = unique_repo("holder"), unique_repo("other")
    m = push(client, holder, image(), "v1")
    push(client, other, image(), "v1")
    assert_error(client.get(f"/v2/{other}/blobs/{sha256(m.blobs[1])}"), 404, "BLOB_UNKNOWN")
    assert_error(client.get(f"/v2/{other}/manifests/{m.digest}"), 404, "MANIFEST_UNKNOWN")


def test_bearer_token_flow(client, shared_server) -> None:
    """401 with a challenge, a token from the realm for the challenged scope, the retry succeeds."""
    repo = unique_repo("token")
    m = push(client, repo, image(), "v1")
    with shared_server.client(auth=None) as anonymous:
        r = anonymous.get(f"/v2/{repo}/manifests/v1")
        assert_error(r, 401, "UNAUTHORIZED")
        assert_api_version(r)
        params = challenge(r)
        assert params["scope"] == f"repository:{repo}:pull"
        assert params["realm"].endswith("/auth/token")
        token = bearer(anonymous, r, "admin", shared_server.admin_password)
        r = anonymous.get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST, **token})
        assert r.status_code == 200
        assert r.content == m.body
        r = anonymous.get(f"/v2/{repo}/blobs/{sha256(m.blobs[0])}", headers=token)
        assert r.status_code == 200
        assert r.content == m.blobs[0]


def test_blob_ranges_from_a_store_that_streams(client) -> None:
    """The memory store (as S3, Azure and Swift) has no local file: a Range is read from its offset."""
    repo = unique_repo("range")
    data = random_bytes(1000)
    path = f"/v2/{repo}/blobs/{push_blob(client, repo, data)}"
    assert client.head(path).headers["accept-ranges"] == "bytes"
    cases = {"bytes=100-199": (100, 199), "bytes=990-": (990, 999), "bytes=-7": (993, 999),
             "bytes=900-5000": (900, 999), "bytes=-5000": (0, 999), "bytes = 0-0": (0, 0)}
    for header, (first, last) in cases.items():
        r = client.get(path, headers={"Range": header})
        assert r.status_code == 206, header
        assert r.headers["content-range"] == f"bytes {first}-{last}/1000", header
        assert r.headers["content-length"] == str(last - first + 1)
        assert r.content == data[first:last + 1], header
    # An interrupted pull continues where it stopped and ends with the whole blob.
    head = client.get(path, headers={"Range": "bytes=0-599"}).content
    tail = client.get(path, headers={"Range": f"bytes={len(head)}-"}).content
    assert head + tail == data
    for unsatisfiable in ("bytes=1000-", "bytes=5000-6000", "bytes=-0"):
        r = client.get(path, headers={"Range": unsatisfiable})
        assert r.status_code == 416, unsatisfiable
        assert r.headers["content-range"] == "bytes */1000" and r.content == b""
    # Invalid ranges are ignored and several ranges are answered whole (no multipart here).
    for whole in ("bytes=500-0", "bytes=abc", "items=0-1", "bytes=0-1,5-9"):
        r = client.get(path, headers={"Range": whole})
        assert r.status_code == 200 and r.content == data, whole
