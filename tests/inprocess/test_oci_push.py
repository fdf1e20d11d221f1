"""OCI distribution spec v1.1, "Push": every way to upload a blob (monolithic POST, POST+PUT,
chunked PATCHes, a streamed PATCH, cross-repository mounts), upload status and cancel, and
manifests of every kind: OCI and Docker images, indexes and manifest lists, artifacts.
"""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest

from tests.integration.oci_client import (  # noqa: F401 - `client` is a fixture
    DOCKER_MANIFEST,
    EMPTY_JSON,
    EMPTY_JSON_DIGEST,
    INDEX_OF,
    OCI_EMPTY,
    OCI_MANIFEST,
    assert_api_version,
    assert_error,
    bearer,
    challenge,
    client,
    encode,
    image,
    index,
    patch_chunk,
    platform_images,
    push,
    push_blob,
    push_blob_chunked,
    put_manifest,
    random_bytes,
    sha256,
    start_upload,
    tags,
    unique_repo,
)


def assert_blob(client: httpx.Client, repo: str, data: bytes, digest: str | None = None) -> None:
    r = client.get(f"/v2/{repo}/blobs/{digest or sha256(data)}")
    assert r.status_code == 200, r.text
    assert r.content == data


# -- blobs -----------------------------------------------------------------------------------------

def test_monolithic_post_with_digest(client) -> None:
    repo = unique_repo("mono")
    data = random_bytes(2048)
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(data)}, content=data,
                    headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v2/{repo}/blobs/{sha256(data)}"
    assert r.headers["docker-content-digest"] == sha256(data)
    assert_api_version(r)
    assert client.get(r.headers["location"]).content == data


def test_post_then_put_with_the_blob(client) -> None:
    repo = unique_repo("postput")
    data = random_bytes(1500)
    r = client.post(f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202
    location = r.headers["location"]
    assert location.startswith(f"/v2/{repo}/blobs/uploads/")
    assert r.headers["docker-upload-uuid"] in location
    r = client.put(location, params={"digest": sha256(data)}, content=data)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v2/{repo}/blobs/{sha256(data)}"
    assert r.headers["docker-content-digest"] == sha256(data)
    assert client.get(r.headers["location"]).content == data


def test_chunked_upload_reports_progress(client) -> None:
    """Each PATCH answers 202 with the range received so far; GET on the session says the same."""
    repo = unique_repo("chunked")
    data = random_bytes(2500)
    location = start_upload(client, repo)
    for start, end in ((0, 999), (1000, 1999), (2000, 2499)):
        r = patch_chunk(client, location, data[start:end + 1], start)
        assert r.status_code == 202, r.text
        assert r.headers["range"] == f"0-{end}"
        location = r.headers["location"]
        status = client.get(location)
        assert status.status_code == 204
        assert status.headers["range"] == f"0-{end}"
        assert status.headers["location"] == location
        assert status.headers["docker-upload-uuid"] in location
    r = client.put(location, params={"digest": sha256(data)})
    assert r.status_code == 201, r.text
    assert_blob(client, repo, data)


def test_chunked_upload_with_the_last_chunk_in_the_put(client) -> None:
    repo = unique_repo("putchunk")
    data = random_bytes(1800)
    location = patch_chunk(client, start_upload(client, repo), data[:1200], 0).headers["location"]
    r = client.put(location, params={"digest": sha256(data)}, content=data[1200:],
                   headers={"Content-Range": "1200-1799", "Content-Type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    assert_blob(client, repo, data)


def test_many_small_chunks(client) -> None:
    repo = unique_repo("chunkhelper")
    data = random_bytes(5000)
    assert push_blob_chunked(client, repo, data, 1024) == sha256(data)
    assert_blob(client, repo, data)


def test_streamed_patch_without_content_length(client) -> None:
    """A PATCH whose body is chunked (no Content-Length, no Content-Range), as Docker sends layers."""
    repo = unique_repo("stream")
    data = random_bytes(40_000)

    def body():  # noqa: ANN202 - an httpx request-body generator
        for i in range(0, len(data), 4096):
            yield data[i:i + 4096]

    r = client.patch(start_upload(client, repo), content=body())
    assert "content-length" not in r.request.headers
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert r.status_code == 202, r.text
    assert r.headers["range"] == f"0-{len(data) - 1}"
    r = client.put(r.headers["location"], params={"digest": sha256(data)})
    assert r.status_code == 201, r.text
    assert_blob(client, repo, data)


def test_cancelled_upload_is_gone(client) -> None:
    repo = unique_repo("cancel")
    data = random_bytes(600)
    location = patch_chunk(client, start_upload(client, repo), data, 0).headers["location"]
    r = client.delete(location)
    assert r.status_code == 204
    assert_error(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(patch_chunk(client, location, data, 600), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(client.put(location, params={"digest": sha256(data)}), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(client.get(f"/v2/{repo}/blobs/{sha256(data)}"), 404, "BLOB_UNKNOWN")


def test_empty_blob(client) -> None:
    repo = unique_repo("empty")
    digest = push_blob(client, repo, b"")
    r = client.get(f"/v2/{repo}/blobs/{digest}")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == "0"


def test_sha512_blob(client) -> None:
    repo = unique_repo("sha512")
    data = random_bytes(700)
    digest = "sha512:" + hashlib.sha512(data).hexdigest()
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
    assert r.status_code == 201, r.text
    assert r.headers["docker-content-digest"] == digest
    assert_blob(client, repo, data, digest)


@pytest.mark.parametrize("with_from", [True, False], ids=["from", "no-from"])
def test_cross_repository_mount(client, with_from) -> None:
    """`?mount=<digest>&from=<repo>`; OCI 1.1 lets a registry find the source itself without `from`."""
    source, target = unique_repo("source"), unique_repo("target")
    data = random_bytes(900)
    digest = push_blob(client, source, data)
    params = {"mount": digest, "from": source} if with_from else {"mount": digest}
    r = client.post(f"/v2/{target}/blobs/uploads/", params=params)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v2/{target}/blobs/{digest}"
    assert r.headers["docker-content-digest"] == digest
    assert_blob(client, target, data)


def test_mount_of_a_blob_the_source_lacks_opens_an_upload(client) -> None:
    source, target = unique_repo("source"), unique_repo("target")
    push_blob(client, source, random_bytes(10))
    data = random_bytes(400)
    r = client.post(f"/v2/{target}/blobs/uploads/", params={"mount": sha256(data), "from": source})
    assert r.status_code == 202, r.text
    assert_error(client.get(f"/v2/{target}/blobs/{sha256(data)}"), 404, "BLOB_UNKNOWN")
    r = client.put(r.headers["location"], params={"digest": sha256(data)}, content=data)
    assert r.status_code == 201, r.text
    assert_blob(client, target, data)


# -- manifests -------------------------------------------------------------------------------------

@pytest.mark.parametrize("media_type", [OCI_MANIFEST, DOCKER_MANIFEST])
def test_image_manifest_by_tag(client, media_type) -> None:
    repo = unique_repo("image")
    m = image(media_type=media_type)
    for blob in m.blobs:
        push_blob(client, repo, blob)
    r = put_manifest(client, repo, "v1", m)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v2/{repo}/manifests/{m.digest}"
    assert r.headers["docker-content-digest"] == m.digest
    assert "oci-subject" not in r.headers
    got = client.get(r.headers["location"], headers={"Accept": media_type})
    assert got.content == m.body
    assert got.headers["content-type"] == media_type
    assert tags(client, repo) == ["v1"]


@pytest.mark.parametrize("media_type", [OCI_MANIFEST, DOCKER_MANIFEST])
def test_index_and_manifest_list(client, media_type) -> None:
    repo = unique_repo("index")
    listing = push(client, repo, index(platform_images(media_type), media_type=INDEX_OF[media_type]), "latest")
    r = client.get(f"/v2/{repo}/manifests/latest", headers={"Accept": INDEX_OF[media_type]})
    assert r.content == listing.body
    assert r.headers["content-type"] == INDEX_OF[media_type]
    for child in listing.children:
        assert client.head(f"/v2/{repo}/manifests/{child.digest}").status_code == 200


def test_push_by_digest_makes_no_tag(client) -> None:
    repo = unique_repo("bydigest")
    m = push(client, repo, image())
    assert tags(client, repo) == []
    assert client.get(f"/v2/{repo}/manifests/{m.digest}").content == m.body


def test_manifest_bytes_are_kept_exactly(client) -> None:
    """Whitespace, key order and a trailing newline are the client's: the digest covers them."""
    repo = unique_repo("verbatim")
    m = image()
    m.body = (json.dumps(dict(reversed(m.doc.items())), indent=3) + "\n").encode()
    push(client, repo, m, "v1")
    r = client.get(f"/v2/{repo}/manifests/v1")
    assert r.content == m.body
    assert r.headers["docker-content-digest"] == sha256(m.body)


def test_tag_moves_to_the_latest_push_and_repush_is_idempotent(client) -> None:
    repo = unique_repo("retag")
    first, second = push(client, repo, image(), "v1"), push(client, repo, image(), "v1")
    assert client.get(f"/v2/{repo}/manifests/v1").content == second.body
    assert client.get(f"/v2/{repo}/manifests/{first.digest}").content == first.body
    assert put_manifest(client, repo, "v1", second).status_code == 201
    assert tags(client, repo) == ["v1"]


def test_artifact_with_the_empty_config(client) -> None:
    repo = unique_repo("artifact")
    assert push_blob(client, repo, EMPTY_JSON) == EMPTY_JSON_DIGEST
    m = image(config=EMPTY_JSON, config_type=OCI_EMPTY, layer_type="application/vnd.example.payload",
              artifact_type="application/vnd.example.thing.v1")
    push(client, repo, m, "thing")
    r = client.get(f"/v2/{repo}/manifests/thing", headers={"Accept": OCI_MANIFEST})
    assert r.content == m.body
    assert r.json()["artifactType"] == "application/vnd.example.thing.v1"
    assert r.json()["config"] == {"mediaType": OCI_EMPTY, "digest": EMPTY_JSON_DIGEST, "size": 2}


def test_foreign_layers_need_not_be_uploaded(client) -> None:
    repo = unique_repo("foreign")
    m = image()
    doc = m.doc
    foreign = random_bytes(64)
    doc["layers"].append({"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                          "digest": sha256(foreign), "size": 64, "urls": ["https://example.com/layer"]})
    m.body = encode(doc)
    push(client, repo, m, "v1")
    assert_error(client.get(f"/v2/{repo}/blobs/{sha256(foreign)}"), 404, "BLOB_UNKNOWN")


def test_token_without_push_scope_is_refused_with_insufficient_scope(client, shared_server) -> None:
    repo = unique_repo("scope")
    m = push(client, repo, image(), "v1")
    with shared_server.client(auth=None) as anonymous:
        # A token for what a pull is challenged with: `repository:<repo>:pull`, nothing more.
        token = bearer(anonymous, anonymous.get(f"/v2/{repo}/tags/list"), "admin", shared_server.admin_password)
        assert anonymous.get(f"/v2/{repo}/manifests/v1", headers=token).status_code == 200
        for r in (anonymous.post(f"/v2/{repo}/blobs/uploads/", headers=token),
                  anonymous.put(f"/v2/{repo}/manifests/v2", content=m.body,
                                headers={"Content-Type": OCI_MANIFEST, **token})):
            assert_error(r, 401, "UNAUTHORIZED")
            assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
            assert challenge(r)["scope"] == f"repository:{repo}:pull,push"
    assert tags(client, repo) == ["v1"]


def test_mount_challenge_asks_for_the_source_too(client, shared_server) -> None:
    """A client that follows the challenge of `?mount=&from=` (the OCI conformance suite does)
    gets a token that can read the source, so the mount succeeds instead of opening an upload."""
    source, target = unique_repo("source"), unique_repo("target")
    digest = push_blob(client, source, random_bytes(300))
    params = {"mount": digest, "from": source}
    with shared_server.client(auth=None) as anonymous:
        refused = anonymous.post(f"/v2/{target}/blobs/uploads/", params=params)
        assert_error(refused, 401, "UNAUTHORIZED")
        assert challenge(refused)["scope"] == f"repository:{target}:pull,push repository:{source}:pull"
        token = bearer(anonymous, refused, "admin", shared_server.admin_password)
        r = anonymous.post(f"/v2/{target}/blobs/uploads/", params=params, headers=token)
        assert r.status_code == 201, r.text
        assert r.headers["location"] == f"/v2/{target}/blobs/{digest}"
        # An invalid `from` is no scope to ask for: the challenge names the target only.
        refused = anonymous.post(f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": "Bad//Name"})
        assert challenge(refused)["scope"] == f"repository:{target}:pull,push"


def test_manifest_of_exactly_4_mib_is_accepted(client) -> None:
    """The spec's SHOULD: a registry accepts manifests up to 4 MiB. (Last here: it is the slowest.)"""
    repo = unique_repo("big")
    m = image()
    doc = m.doc
    doc["annotations"] = {"pad": ""}
    doc["annotations"]["pad"] = "x" * (4 * 1024 * 1024 - len(encode(doc)))
    m.body = encode(doc)
    assert len(m.body) == 4 * 1024 * 1024
    push(client, repo, m, "big")
    assert client.get(f"/v2/{repo}/manifests/big").content == m.body
