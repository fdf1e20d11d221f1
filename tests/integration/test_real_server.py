"""What only a real `dockyard serve` process shows, on SQLite and PostgreSQL: the server starts
and answers, a connection cut short mid-body (a real socket), blob ranges from the filesystem
store; and a representative slice of the OCI conformance tests, whose home is the in-process
tier (tests/inprocess/test_oci_*.py), run again here through uvicorn and PostgreSQL, with the
`/api/v0` lab scenario and the events' actor and client address as a real client's connection gives them.
"""

from __future__ import annotations

import base64
import socket

import pytest

from tests.inprocess.test_api_v0_accounts import (  # noqa: F401 - collected here again
    test_events_say_who_and_from_where,
)
from tests.inprocess.test_api_v0_repositories import (  # noqa: F401 - `lab` is a fixture
    lab,
    test_the_lab_scenario_reads_as_the_lab_says,
)
from tests.inprocess.test_oci_discovery import (  # noqa: F401 - collected here again
    test_catalog_is_paginated_with_link,
    test_referrers_list_and_artifact_type_filter,
    test_tags_are_listed_in_lexical_order_and_paginated,
)
from tests.inprocess.test_oci_management import (  # noqa: F401 - collected here again
    test_delete_blob_in_one_repository_only,
    test_delete_manifest_by_digest_removes_the_tags_on_it,
)
from tests.inprocess.test_oci_pull import (  # noqa: F401 - collected here again
    test_bearer_token_flow,
    test_index_then_each_platform_manifest_then_its_blobs,
    test_manifest_by_tag_and_digest_is_the_exact_bytes_pushed,
)
from tests.inprocess.test_oci_push import (  # noqa: F401 - collected here again
    test_chunked_upload_reports_progress,
    test_cross_repository_mount,
    test_image_manifest_by_tag,
    test_manifest_of_exactly_4_mib_is_accepted,
    test_monolithic_post_with_digest,
    test_streamed_patch_without_content_length,
    test_token_without_push_scope_is_refused_with_insufficient_scope,
)
from tests.integration.oci_client import (  # noqa: F401 - `client` is a fixture
    catalog,
    client,
    image,
    patch_chunk,
    push,
    push_blob,
    random_bytes,
    sha256,
    start_upload,
    unique_repo,
    upload_sessions,
)


def test_version_check_needs_credentials(shared_server) -> None:
    with shared_server.client(auth=None) as anonymous:
        r = anonymous.get("/v2/")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith('Bearer realm="')
    assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    with shared_server.client() as admin:
        r = admin.get("/v2/")
    assert r.status_code == 200
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"


def _send_cut_short(server, location: str, framing: str, data: bytes) -> None:
    """A PATCH whose connection closes before the body it announced is complete."""
    auth = base64.b64encode(f"admin:{server.admin_password}".encode()).decode()
    if framing == "content-length":
        head, body = f"Content-Length: {len(data) * 2}", data
    else:
        head, body = "Transfer-Encoding: chunked", b"%x\r\n%s\r\n" % (len(data), data)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(f"PATCH {location} HTTP/1.1\r\nHost: {server.host}\r\nAuthorization: Basic {auth}\r\n"
                  f"Content-Type: application/octet-stream\r\n{head}\r\n\r\n".encode() + body)
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_body_cut_short_stores_nothing_and_the_upload_resumes(client, shared_server, framing) -> None:
    repo = unique_repo("known")
    push(client, repo, image(), "v1")
    before = catalog(client), upload_sessions(shared_server)
    data = random_bytes(800)
    location = start_upload(client, repo)
    _send_cut_short(shared_server, location, framing, data[:300])
    status = client.get(location)
    assert status.status_code == 204
    assert status.headers["range"] == "0-0"
    # The client resumes from the reported offset and ends with exactly its blob (stored on purpose).
    assert patch_chunk(client, location, data, 0).status_code == 202
    assert client.put(location, params={"digest": sha256(data)}).status_code == 201
    assert client.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data
    # No repository appeared and no upload session was left behind; the server still answers.
    assert client.get("/v2/").status_code == 200
    assert (catalog(client), upload_sessions(shared_server)) == before


def test_blob_ranges_resume_a_pull(client) -> None:
    repo = unique_repo("range")
    data = random_bytes(1000)
    path = f"/v2/{repo}/blobs/{push_blob(client, repo, data)}"
    cases = {"bytes=100-199": (100, 199), "bytes=990-": (990, 999), "bytes=-7": (993, 999)}
    for header, (first, last) in cases.items():
        r = client.get(path, headers={"Range": header})
        assert r.status_code == 206, header
        assert r.headers["content-range"] == f"bytes {first}-{last}/1000"
        assert r.headers["content-length"] == str(last - first + 1)
        assert r.content == data[first:last + 1]
    # An interrupted pull continues where it stopped and ends with the whole blob.
    head = client.get(path, headers={"Range": "bytes=0-599"}).content
    tail = client.get(path, headers={"Range": f"bytes={len(head)}-"}).content
    assert head + tail == data
    r = client.get(path, headers={"Range": "bytes=1000-"})
    assert r.status_code == 416
    assert r.headers["content-range"] == "bytes */1000"


def test_a_blob_file_gone_since_its_link_was_read_is_unknown(client, shared_server) -> None:
    """Garbage collection may remove a blob's file between the link check and the read (the
    filesystem store's sendfile path): the answer is 404 BLOB_UNKNOWN, not a 500."""
    repo = unique_repo("swept")
    digest = push_blob(client, repo, random_bytes(2000))
    algorithm, hexpart = digest.split(":")
    (shared_server.data_dir / "blobs" / "blobs" / algorithm / hexpart[:2] / hexpart).unlink()
    for method in ("GET", "HEAD"):
        r = client.request(method, f"/v2/{repo}/blobs/{digest}")
        assert r.status_code == 404, (method, r.status_code)
    assert client.get(f"/v2/{repo}/blobs/{digest}").json()["errors"][0]["code"] == "BLOB_UNKNOWN"

