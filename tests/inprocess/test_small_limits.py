"""Issue 7, item 8: small inputs that answered 500, 400 or 422, or were accepted, and should not be.

A `Content-Range` too long for an int, a manifest descriptor whose size is not the stored
blob's, an inverted `Range`, unbounded upload sessions per user, an incomplete `Allow`, and
OpenAPI schemas silent about rules the routes enforce.
"""

from __future__ import annotations

import hashlib
import json
import re

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Route

from dockyard.api.settings import Settings
from dockyard.domain.account import MIN_PASSWORD_LENGTH
from dockyard.domain.auth_settings import LDAP_URL_PATTERN
from tests.inprocess.conftest import API, Dockyard, image_parts, inprocess_settings

pytestmark = pytest.mark.anyio

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def settings(tmp_path) -> Settings:
    # Blobs on the filesystem: its whole-file and Range paths are what clients pull through.
    return inprocess_settings(storage=f"file://{tmp_path}/blobs", max_upload_sessions_per_user=3)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def _push_blob(client: httpx.AsyncClient, repository: str, data: bytes) -> str:
    r = await client.post(f"/v2/{repository}/blobs/uploads/", params={"digest": _digest(data)}, content=data)
    assert r.status_code == 201, r.text
    return _digest(data)


async def test_a_content_range_of_5000_digits_is_416(client: httpx.AsyncClient) -> None:
    r = await client.post("/v2/admin/app/blobs/uploads/")
    assert r.status_code == 202, r.text
    location = r.headers["location"]
    huge = "9" * 5000
    r = await client.patch(location, content=b"x", headers={"Content-Range": f"0-{huge}"})
    assert r.status_code == 416, r.text
    assert r.json()["errors"][0]["code"] == "BLOB_UPLOAD_INVALID"
    r = await client.patch(location, content=b"x", headers={"Content-Range": f"{huge}-{huge}"})
    assert r.status_code == 416, r.text
    # The session is unharmed: a proper chunk still goes in.
    r = await client.patch(location, content=b"x", headers={"Content-Range": "0-0"})
    assert r.status_code == 202, r.text


@pytest.mark.parametrize("wrong", ["layer", "config"])
async def test_a_descriptor_size_other_than_the_stored_blobs_is_refused(client: httpx.AsyncClient,
                                                                         wrong: str) -> None:
    config, layer, _ = image_parts("v1")
    await _push_blob(client, "admin/sizes", config)
    await _push_blob(client, "admin/sizes", layer)
    sizes = {"config": len(config), "layer": len(layer)}
    sizes[wrong] += 1
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": sizes["config"],
                   "digest": _digest(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": sizes["layer"],
                    "digest": _digest(layer)}],
    }).encode()
    r = await client.put("/v2/admin/sizes/manifests/v1", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 400, r.text
    error = r.json()["errors"][0]
    assert error["code"] == "MANIFEST_INVALID" and "size" in error["message"]
    assert error["detail"]["sizes"] == {_digest(config if wrong == "config" else layer):
                                        {"declared": sizes[wrong], "stored": sizes[wrong] - 1}}
    # Nothing half-stored: no tag, no manifest.
    assert (await client.get("/v2/admin/sizes/manifests/v1")).status_code == 404
    assert (await client.get(f"/v2/admin/sizes/manifests/{_digest(manifest)}")).status_code == 404


async def test_an_index_entry_with_the_wrong_size_is_refused(dockyard: Dockyard, client: httpx.AsyncClient) -> None:
    child = await dockyard.push(client, "admin/multi", "amd64")
    stored = (await client.get(f"/v2/admin/multi/manifests/{child}", headers={"Accept": OCI_MANIFEST})).content
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": [{"mediaType": OCI_MANIFEST, "digest": child, "size": len(stored) + 7}]})
    r = await client.put("/v2/admin/multi/manifests/all", content=index,
                         headers={"Content-Type": "application/vnd.oci.image.index.v1+json"})
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "MANIFEST_INVALID", r.text


async def test_an_inverted_range_is_ignored_and_the_whole_blob_sent(client: httpx.AsyncClient) -> None:
    data = bytes(range(256)) * 4
    digest = await _push_blob(client, "admin/ranges", data)
    url = f"/v2/admin/ranges/blobs/{digest}"
    for invalid in ("bytes=500-0", "bytes=abc", "bytes=0-1,9-3", "items=0-1"):
        r = await client.get(url, headers={"Range": invalid})
        assert r.status_code == 200 and r.content == data, (invalid, r.status_code)
    r = await client.get(url, headers={"Range": "bytes=500-501"})
    assert r.status_code == 206 and r.content == data[500:502]
    r = await client.get(url, headers={"Range": "bytes=-2"})
    assert r.status_code == 206 and r.content == data[-2:]
    r = await client.get(url, headers={"Range": "bytes=5000-6000"})  # valid but past the end
    assert r.status_code == 416


async def test_upload_sessions_are_bounded_per_user(dockyard: Dockyard) -> None:
    alice, bob = await dockyard.user(), await dockyard.user()
    async with dockyard.client(alice) as as_alice, dockyard.client(bob) as as_bob:
        opened = []
        for _ in range(3):
            r = await as_alice.post(f"/v2/{alice[0]}/app/blobs/uploads/")
            assert r.status_code == 202, r.text
            opened.append(r.headers["location"])
        r = await as_alice.post(f"/v2/{alice[0]}/app/blobs/uploads/")
        assert r.status_code == 429, r.text
        error = r.json()["errors"][0]
        assert error["code"] == "TOOMANYREQUESTS" and "3 open upload sessions" in error["message"]
        assert error["detail"] == {"limit": 3}
        # Monolithic uploads open a session too.
        r = await as_alice.post(f"/v2/{alice[0]}/app/blobs/uploads/", params={"digest": _digest(b"x")}, content=b"x")
        assert r.status_code == 429, r.text
        # Another user is not affected.
        assert (await as_bob.post(f"/v2/{bob[0]}/app/blobs/uploads/")).status_code == 202
        # Finishing or cancelling one frees a place.
        assert (await as_alice.delete(opened.pop())).status_code == 204
        r = await as_alice.put(opened.pop(), params={"digest": _digest(b"y")}, content=b"y")
        assert r.status_code == 201, r.text
        for _ in range(2):
            assert (await as_alice.post(f"/v2/{alice[0]}/app/blobs/uploads/")).status_code == 202


def _concrete(path: str) -> str:
    """A request path for a route template: each parameter becomes a plausible value."""
    return (path.replace("{name:path}", "admin/app").replace("{digest}", "sha256:" + "0" * 64)
            .replace("{upload_id}", "00000000-0000-0000-0000-000000000000")
            .replace("{reference}", "v1").replace("{path:path}", "x"))


async def test_options_answers_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    r = await client.options("/v2/admin/app/manifests/v1")
    assert r.status_code == 204, r.text
    assert r.headers["allow"] == "DELETE, GET, HEAD, OPTIONS, PUT"
    r = await client.options("/v2/admin/app/blobs/uploads/00000000-0000-0000-0000-000000000000")
    assert r.headers["allow"] == "DELETE, GET, HEAD, OPTIONS, PATCH, PUT"
    r = await client.options(f"{API}/accounts")
    assert r.status_code == 204 and {"GET", "POST", "OPTIONS"} <= set(r.headers["allow"].split(", "))
    r = await client.patch("/v2/admin/app/manifests/v1")
    assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET, HEAD, OPTIONS, PUT"
    assert r.json()["errors"][0]["code"] == "UNSUPPORTED"
    r = await client.patch(f"{API}/accounts")
    assert r.status_code == 405 and r.headers["content-type"] == "application/problem+json"
    assert "GET" in r.headers["allow"] and "POST" in r.headers["allow"]


async def test_every_undeclared_method_of_every_route_is_405(app: FastAPI, client: httpx.AsyncClient) -> None:
    declared: dict[str, set[str]] = {}
    for route in app.router.routes:  # /v2/, /auth, /healthz: plain routes
        if isinstance(route, Route) and route.methods:
            declared.setdefault(_concrete(route.path), set()).update(route.methods)
    for path, operations in (await client.get("/openapi.json")).json()["paths"].items():  # /api/v0
        declared.setdefault(re.sub(r"\{[^}]+\}", "admin", path), set()).update(m.upper() for m in operations)
    assert len(declared) >= 30
    wrong = []
    for path, methods in declared.items():
        for method in {"GET", "POST", "PUT", "PATCH", "DELETE"} - methods:
            r = await client.request(method, path)
            # Another route's template may match this concrete path; only a 422 or an Allow
            # without this route's methods is a failure.
            if r.status_code == 422 or (r.status_code == 405 and not methods <= set(r.headers["allow"].split(", "))):
                wrong.append((method, path, r.status_code, r.headers.get("allow")))
    assert wrong == []


async def test_openapi_states_the_rules_the_routes_enforce(client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    assert schemas["NewUser"]["properties"]["password"]["minLength"] == MIN_PASSWORD_LENGTH
    assert schemas["AccountChange"]["properties"]["password"]["minLength"] == MIN_PASSWORD_LENGTH
    assert schemas["LdapSettings"]["properties"]["url"]["pattern"] == LDAP_URL_PATTERN
