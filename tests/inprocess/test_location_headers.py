"""`Location` on `/v2/` upload and manifest answers: relative until a public URL or a domain name is
set, then absolute with it (as the token realm), so a client is sent on to the name it trusts.

Distribution always answers absolute URLs (built from the request's host or `http.host`); a relative
one is valid too (RFC 9110 §10.2.2) and containers/image (skopeo, podman) and Docker resolve it
against the request's URL, so without a configured name Dockyard keeps it relative: behind a proxy
that rewrites the host it is still right. The e2e tiers push with skopeo and podman both ways.
"""

from __future__ import annotations

import hashlib

import httpx
import pytest

from dockyard.api.settings import Settings
from tests.inprocess.conftest import Dockyard, image_parts, inprocess_settings, unique

pytestmark = pytest.mark.anyio
OCI = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}


async def _locations(client: httpx.AsyncClient, repo: str) -> list[str]:
    """Push an image every way a Location comes back (start, chunk, status, finish, monolithic,
    manifest) and follow each Location as given; returns them."""
    config, layer, manifest = image_parts("v1")
    seen = []
    started = await client.post(f"/v2/{repo}/blobs/uploads/")
    assert started.status_code == 202, started.text
    seen.append(started.headers["location"])
    chunk = await client.patch(started.headers["location"], content=layer,
                               headers={"Content-Type": "application/octet-stream"})
    assert chunk.status_code == 202, chunk.text
    seen.append(chunk.headers["location"])
    status = await client.get(chunk.headers["location"])
    assert status.status_code == 204
    seen.append(status.headers["location"])
    done = await client.put(status.headers["location"], params={"digest": _digest(layer)})
    assert done.status_code == 201, done.text
    seen.append(done.headers["location"])
    mono = await client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": _digest(config)}, content=config)
    assert mono.status_code == 201, mono.text
    seen.append(mono.headers["location"])
    put = await client.put(f"/v2/{repo}/manifests/v1", content=manifest, headers=OCI)
    assert put.status_code == 201, put.text
    seen.append(put.headers["location"])
    assert (await client.get(done.headers["location"])).content == layer
    assert (await client.get(mono.headers["location"])).content == config
    assert (await client.get(put.headers["location"], headers={"Accept": OCI["Content-Type"]})).content == manifest
    return seen


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def test_without_a_domain_name_locations_are_relative(client: httpx.AsyncClient) -> None:
    repo = f"admin/{unique('loc')}"
    for value in await _locations(client, repo):
        assert value.startswith(f"/v2/{repo}/"), value


async def test_with_a_domain_name_locations_name_it(dockyard: Dockyard, client: httpx.AsyncClient) -> None:
    """The client here reaches http://dockyard.test; the domain name is another name for it."""
    answer = await client.put("/api/v0/settings/general", json={"domainName": "registry.example.test:5443"})
    assert answer.status_code == 200
    repo = f"admin/{unique('loc')}"
    for value in await _locations(client, repo):
        assert value.startswith(f"http://registry.example.test:5443/v2/{repo}/"), value


class TestPublicUrl:
    @pytest.fixture
    def settings(self) -> Settings:
        return inprocess_settings(public_url="https://registry.example.test/")

    async def test_the_public_url_wins(self, client: httpx.AsyncClient) -> None:
        await client.put("/api/v0/settings/general", json={"domainName": "other.example.test"})
        repo = f"admin/{unique('loc')}"
        for value in await _locations(client, repo):
            assert value.startswith(f"https://registry.example.test/v2/{repo}/"), value
