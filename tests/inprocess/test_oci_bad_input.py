"""OCI distribution spec v1.1: what a registry refuses, with which status and error code.

Every test here also checks, through `leaves_no_trace`, that the refused request changed
nothing: no repository appeared in the catalog, no upload session was left behind, and the
server still answers. Where a test stored something on purpose (a recovered upload), it says so.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.integration.oci_client import (  # noqa: F401 - `client` is a fixture
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Manifest,
    assert_error,
    catalog,
    client,
    encode,
    image,
    index,
    patch_chunk,
    push,
    push_blob,
    put_manifest,
    random_bytes,
    sha256,
    start_upload,
    unique_repo,
    upload_sessions,
)

ABSENT = sha256(b"never pushed")
NO_SUCH_UPLOAD = str(uuid.UUID(int=0))


@pytest.fixture
def known(shared_server) -> tuple[str, Manifest]:
    """The one repository these tests rely on: it holds an image tagged `v1`."""
    repo = unique_repo("known")
    with shared_server.client() as c:
        return repo, push(c, repo, image(), "v1")


@pytest.fixture(autouse=True)
def leaves_no_trace(shared_server, known) -> None:
    with shared_server.client() as c:
        before = catalog(c), upload_sessions(shared_server)
        yield
        assert c.get("/v2/").status_code == 200
        assert (catalog(c), upload_sessions(shared_server)) == before


def assert_no_repository(client: httpx.Client, repo: str) -> None:
    assert_error(client.get(f"/v2/{repo}/tags/list"), 404, "NAME_UNKNOWN")


# -- blob uploads ----------------------------------------------------------------------------------

def test_monolithic_upload_with_the_wrong_digest(client) -> None:
    repo = unique_repo("wrongdigest")
    data = random_bytes(500)
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(data + b"!")}, content=data)
    assert_error(r, 400, "DIGEST_INVALID")
    assert_no_repository(client, repo)


@pytest.mark.parametrize("sent", ["all", "half"])
def test_put_with_a_digest_the_bytes_do_not_have(client, known, sent) -> None:
    """A wrong digest, or a truncated upload finished with the whole blob's digest."""
    repo = known[0]
    data = random_bytes(1000)
    location = start_upload(client, repo)
    body = data if sent == "all" else data[:500]
    r = client.put(location, params={"digest": sha256(data if sent == "half" else data[1:])}, content=body)
    assert_error(r, 400, "DIGEST_INVALID")
    assert_error(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    for digest in (sha256(data), sha256(data[:500]), sha256(data[1:])):
        assert_error(client.get(f"/v2/{repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")


def test_out_of_order_chunks_answer_416_and_keep_the_upload(client, known) -> None:
    repo = known[0]
    data = random_bytes(3000)
    location = patch_chunk(client, start_upload(client, repo), data[:1000], 0).headers["location"]
    refused = [
        patch_chunk(client, location, data[2000:], 2000),  # skips ahead
        patch_chunk(client, location, data[:1000], 0),  # starts over
        patch_chunk(client, location, data[500:1500], 500),  # overlaps
        client.patch(location, content=data[1000:1100], headers={"Content-Range": "1000-1199"}),  # wrong length
        client.patch(location, content=data[1000:1100], headers={"Content-Range": "bytes=oops"}),  # malformed
        client.put(location, params={"digest": sha256(data)}, content=data[2000:],  # last chunk, out of order
                   headers={"Content-Range": "2000-2999"}),
    ]
    for r in refused:
        assert_error(r, 416, "BLOB_UPLOAD_INVALID")
        status = client.get(location)
        assert status.status_code == 204
        assert status.headers["range"] == "0-999"
    # The upload goes on from where it really is (and this blob is stored on purpose).
    assert patch_chunk(client, location, data[1000:2000], 1000).headers["range"] == "0-1999"
    r = client.put(location, params={"digest": sha256(data)}, content=data[2000:],
                   headers={"Content-Range": "2000-2999"})
    assert r.status_code == 201, r.text
    assert client.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data


def test_put_without_a_digest_keeps_the_upload(client, known) -> None:
    location = start_upload(client, known[0])
    assert_error(client.put(location, content=b"abc"), 400, "DIGEST_INVALID")
    assert client.get(location).status_code == 204
    assert client.delete(location).status_code == 204


def test_unknown_uploads(client, known) -> None:
    repo = known[0]
    for upload in (NO_SUCH_UPLOAD, "not-an-upload-id"):
        location = f"/v2/{repo}/blobs/uploads/{upload}"
        for r in (client.get(location), client.patch(location, content=b"x"),
                  client.put(location, params={"digest": sha256(b"x")}, content=b"x"), client.delete(location)):
            assert_error(r, 404, "BLOB_UPLOAD_UNKNOWN")
    # A session belongs to the repository it was opened in.
    location = start_upload(client, repo)
    elsewhere = location.replace(f"/v2/{repo}/", f"/v2/{repo}-elsewhere/")
    assert_error(client.get(elsewhere), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(client.put(elsewhere, params={"digest": sha256(b"")}), 404, "BLOB_UPLOAD_UNKNOWN")
    assert client.delete(location).status_code == 204


# -- digests ---------------------------------------------------------------------------------------

BAD_DIGESTS = ["sha256:baddigeststring", "sha256:" + "a" * 63, "sha256:" + "A" * 64, "md5:" + "0" * 32]


@pytest.mark.parametrize("bad", BAD_DIGESTS)
def test_invalid_digests_are_digest_invalid(client, known, bad) -> None:
    repo, m = known
    for r in (
        client.get(f"/v2/{repo}/blobs/{bad}"),
        client.delete(f"/v2/{repo}/blobs/{bad}"),
        client.get(f"/v2/{repo}/manifests/{bad}"),
        client.delete(f"/v2/{repo}/manifests/{bad}"),
        put_manifest(client, repo, bad, m),
        client.get(f"/v2/{repo}/referrers/{bad}"),
        client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": bad}, content=b"abc"),
        client.post(f"/v2/{repo}/blobs/uploads/", params={"mount": bad, "from": repo}),
    ):
        assert_error(r, 400, "DIGEST_INVALID")
    assert client.head(f"/v2/{repo}/blobs/{bad}").status_code == 400
    location = start_upload(client, repo)
    assert_error(client.put(location, params={"digest": bad}, content=b"abc"), 400, "DIGEST_INVALID")
    assert client.delete(location).status_code == 204


def test_manifest_put_by_a_digest_of_other_bytes(client, known) -> None:
    repo, m = known
    r = client.put(f"/v2/{repo}/manifests/{sha256(m.body + b' ')}", content=m.body,
                   headers={"Content-Type": OCI_MANIFEST})
    assert_error(r, 400, "DIGEST_INVALID")
    assert_error(client.get(f"/v2/{repo}/manifests/{sha256(m.body + b' ')}"), 404, "MANIFEST_UNKNOWN")


# -- manifests -------------------------------------------------------------------------------------

def _edit(change: Callable[[dict[str, Any]], Any], content_type: str = OCI_MANIFEST) -> Callable:
    def make(doc: dict[str, Any]) -> tuple[str, bytes]:
        doc = copy.deepcopy(doc)
        change(doc)
        return content_type, encode(doc)
    return make


INVALID_MANIFESTS: dict[str, Callable[[dict[str, Any]], tuple[str, bytes]]] = {
    "not-json": lambda doc: (OCI_MANIFEST, b'{"schemaVersion": 2,'),
    "not-an-object": lambda doc: (OCI_MANIFEST, b"[]"),
    "schema-1": _edit(lambda d: d.update(schemaVersion=1)),
    "schema-3": _edit(lambda d: d.update(schemaVersion=3)),
    "unknown-media-type": _edit(lambda d: d.update(mediaType="application/vnd.example.unknown+json"),
                                "application/vnd.example.unknown+json"),
    "unknown-content-type": _edit(lambda d: d.pop("mediaType"), "application/vnd.example.unknown+json"),
    "media-type-not-content-type": _edit(lambda d: d.update(annotations={"a": "b"}), DOCKER_MANIFEST),
    "no-config": _edit(lambda d: d.pop("config")),
    "layer-digest-invalid": _edit(lambda d: d["layers"][0].update(digest="sha256:nothex")),
    "layer-size-negative": _edit(lambda d: d["layers"][0].update(size=-1)),
    "layers-not-a-list": _edit(lambda d: d.update(layers={})),
    "image-with-manifests": _edit(lambda d: d.update(manifests=[])),
    "index-without-manifests": _edit(lambda d: d.update(mediaType=OCI_INDEX), OCI_INDEX),
}


@pytest.mark.parametrize("case", INVALID_MANIFESTS)
def test_invalid_manifests_are_manifest_invalid(client, known, case) -> None:
    repo, m = known
    content_type, body = INVALID_MANIFESTS[case](m.doc)
    fresh = unique_repo("invalid")
    for target in (repo, fresh):
        r = client.put(f"/v2/{target}/manifests/bad", content=body, headers={"Content-Type": content_type})
        assert_error(r, 400, "MANIFEST_INVALID")
    assert_error(client.get(f"/v2/{repo}/manifests/bad"), 404, "MANIFEST_UNKNOWN")
    assert_error(client.get(f"/v2/{repo}/manifests/{sha256(body)}"), 404, "MANIFEST_UNKNOWN")
    assert_no_repository(client, fresh)


@pytest.mark.parametrize("tag", ["-leading-dash", ".leading-dot", "t" * 129, "sp%20ace"])
def test_invalid_tags_are_refused(client, known, tag) -> None:
    repo, m = known
    assert_error(put_manifest(client, repo, tag, m), 400, "MANIFEST_INVALID")
    assert client.get(f"/v2/{repo}/tags/list").json()["tags"] == ["v1"]


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
def test_manifest_over_4_mib_is_size_invalid(client, known, streamed) -> None:
    repo, m = known
    doc = m.doc
    doc["annotations"] = {"pad": "x" * (4 * 1024 * 1024)}
    body = encode(doc)
    content = (body[i:i + 65536] for i in range(0, len(body), 65536)) if streamed else body
    r = client.put(f"/v2/{repo}/manifests/huge", content=content, headers={"Content-Type": OCI_MANIFEST})
    assert_error(r, 413, "SIZE_INVALID")
    assert_error(client.get(f"/v2/{repo}/manifests/huge"), 404, "MANIFEST_UNKNOWN")


def test_manifests_naming_unknown_content_are_manifest_blob_unknown(client, known) -> None:
    repo, m = known
    missing_layer = image()
    push_blob(client, repo, missing_layer.blobs[0])  # the config is there; the layer is not
    missing_child = index([image()])
    for refused in (missing_layer, missing_child):
        assert_error(put_manifest(client, repo, "incomplete", refused), 400, "MANIFEST_BLOB_UNKNOWN")
        assert_error(client.get(f"/v2/{repo}/manifests/{refused.digest}"), 404, "MANIFEST_UNKNOWN")
    assert_error(client.get(f"/v2/{repo}/manifests/incomplete"), 404, "MANIFEST_UNKNOWN")
    # Blobs another repository holds are not this repository's.
    fresh = unique_repo("borrower")
    assert_error(put_manifest(client, fresh, "v1", m), 400, "MANIFEST_BLOB_UNKNOWN")
    assert_no_repository(client, fresh)


# -- names and pagination --------------------------------------------------------------------------

BAD_NAMES = ["Upper/case", "a//b", "-lead/dash", "trailing_/sep", "a" * 256]


@pytest.mark.parametrize("name", BAD_NAMES, ids=["upper", "empty-component", "leading-sep", "trailing-sep",
                                                 "too-long"])
def test_invalid_names_are_name_invalid(client, known, name) -> None:
    m = known[1]
    upload = f"/v2/{name}/blobs/uploads/{NO_SUCH_UPLOAD}"
    for r in (
        client.get(f"/v2/{name}/tags/list"),
        client.get(f"/v2/{name}/manifests/v1"),
        put_manifest(client, name, "v1", m),
        client.delete(f"/v2/{name}/manifests/v1"),
        client.get(f"/v2/{name}/blobs/{ABSENT}"),
        client.delete(f"/v2/{name}/blobs/{ABSENT}"),
        client.post(f"/v2/{name}/blobs/uploads/"),
        client.post(f"/v2/{name}/blobs/uploads/", params={"digest": sha256(b"x")}, content=b"x"),
        client.get(upload), client.patch(upload, content=b"x"), client.delete(upload),
        client.put(upload, params={"digest": sha256(b"x")}),
        client.get(f"/v2/{name}/referrers/{ABSENT}"),
    ):
        assert_error(r, 400, "NAME_INVALID")
    assert client.head(f"/v2/{name}/manifests/v1").status_code == 400


def test_unknown_repository_is_name_unknown(client) -> None:
    repo = unique_repo("nobody")
    assert_no_repository(client, repo)
    assert_error(client.get(f"/v2/{repo}/manifests/v1"), 404, "NAME_UNKNOWN")
    assert_error(client.get(f"/v2/{repo}/manifests/{ABSENT}"), 404, "NAME_UNKNOWN")
    assert client.head(f"/v2/{repo}/manifests/v1").status_code == 404
    assert_error(client.get(f"/v2/{repo}/blobs/{ABSENT}"), 404, "BLOB_UNKNOWN")
    # The longest valid name is unknown, not invalid.
    assert_no_repository(client, "a" * 255)


def test_a_push_into_a_namespace_that_is_no_account_is_name_unknown(client, known) -> None:
    """Issue 7, item 1 (namespace takeover): even a global admin's push may not create a repository
    in a namespace that is no user or organisation; each way in says which account is missing."""
    namespace = f"ghost{uuid.uuid4().hex[:8]}"
    repo, data = f"{namespace}/img", b"a layer"
    empty_index = encode({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
    for r in (
        client.post(f"/v2/{repo}/blobs/uploads/"),
        client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(data)}, content=data),
        client.post(f"/v2/{repo}/blobs/uploads/", params={"mount": sha256(known[1].blobs[0]), "from": known[0]}),
        client.put(f"/v2/{repo}/manifests/v1", content=empty_index, headers={"Content-Type": OCI_INDEX}),
    ):
        assert_error(r, 404, "NAME_UNKNOWN")
        (error,) = r.json()["errors"]
        assert f"no user or organisation '{namespace}'" in error["message"] and error["detail"] == {
            "namespace": namespace}
    assert_error(client.post("/v2/busybox/blobs/uploads/"), 404, "NAME_UNKNOWN")  # no namespace at all


@pytest.mark.parametrize("n", ["-1", "ten"])
def test_invalid_page_sizes(client, known, n) -> None:
    for path in (f"/v2/{known[0]}/tags/list", "/v2/_catalog"):
        assert_error(client.get(path, params={"n": n}), 400, "PAGINATION_NUMBER_INVALID")
