"""The in-process tier itself: the app runs from `create_app` with its lifespan, and time is the
test's clock — registry JWTs, refresh tokens, access tokens and upload sessions age without sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from dockyard.api.auth import REFRESH_TTL_SECONDS
from dockyard.gc.upload_purge import purge_uploads
from tests.inprocess.conftest import API, Clock, Dockyard, InProcessServer

pytestmark = pytest.mark.anyio


async def test_version_check_and_lifespan(app, client: httpx.AsyncClient, anon_client: httpx.AsyncClient) -> None:
    assert app.state.services.registry is not None  # built by the lifespan
    r = await anon_client.get("/v2/")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith('Bearer realm="http://dockyard.test/')
    r = await client.get("/v2/")
    assert r.status_code == 200 and r.headers["docker-distribution-api-version"] == "registry/2.0"


async def test_helpers_make_accounts_and_push(dockyard: Dockyard, anon_client: httpx.AsyncClient) -> None:
    alice, bob = await dockyard.user(), await dockyard.user()
    org = await dockyard.org(owner=alice)
    team = await dockyard.team(org, "core", members=[bob[0]], owner=alice)
    async with dockyard.client(alice) as as_alice:
        digest = await dockyard.push(as_alice, f"{org}/app", "v1")
    await dockyard.grant(f"{org}/app", team, "read-only", owner=alice)
    async with dockyard.client(bob) as as_bob:
        r = await as_bob.get(f"/v2/{org}/app/manifests/v1", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert r.status_code == 200 and r.headers["docker-content-digest"] == digest
    assert (await anon_client.get(f"/v2/{org}/app/manifests/v1")).status_code == 401  # private
    pushed = [e for e in dockyard.events() if e["topic"] == "dockyard.Manifest.Pushed"]
    assert pushed and pushed[-1]["actor"] == alice[0]


async def test_registry_token_expires_by_the_clock(dockyard: Dockyard, client: httpx.AsyncClient,
                                                   anon_client: httpx.AsyncClient, clock: Clock) -> None:
    await dockyard.push(client, "admin/app", "v1")
    r = await client.get("/auth/token", params={"service": "dockyard", "scope": "repository:admin/app:pull"})
    assert r.status_code == 200, r.text
    bearer = {"Authorization": f"Bearer {r.json()['token']}"}
    assert (await anon_client.get("/v2/admin/app/tags/list", headers=bearer)).status_code == 200
    clock.advance(dockyard.services.settings.token_ttl_seconds - 1)
    assert (await anon_client.get("/v2/admin/app/tags/list", headers=bearer)).status_code == 200
    clock.advance(1)
    assert (await anon_client.get("/v2/admin/app/tags/list", headers=bearer)).status_code == 401


async def test_refresh_token_expires_by_the_clock(anon_client: httpx.AsyncClient, clock: Clock) -> None:
    from tests.conftest import ADMIN_PASSWORD

    login = {"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD, "access_type": "offline"}
    used, unused = [(await anon_client.post("/auth/token", data=login)).json()["refresh_token"] for _ in range(2)]
    clock.advance(REFRESH_TTL_SECONDS - 1)
    r = await anon_client.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": used})
    assert r.status_code == 200, r.text
    rotated = r.json()["refresh_token"]  # a refresh token rotates on use: the new one lives on
    clock.advance(1)
    r = await anon_client.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": unused})
    assert r.status_code == 401 and r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    r = await anon_client.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": rotated})
    assert r.status_code == 200, r.text


async def test_access_token_expires_by_the_clock(dockyard: Dockyard, clock: Clock) -> None:
    user, password = await dockyard.user()
    expires = datetime.fromtimestamp(clock(), UTC) + timedelta(hours=1)
    r = await dockyard.client((user, password)).post(
        f"{API}/accounts/{user}/tokens",
        json={"name": "ci", "scope": "read-only", "repositories": [], "expiresAt": expires.isoformat()})
    assert r.status_code == 201, r.text
    with_token = dockyard.client((user, r.json()["token"]))
    assert (await with_token.get("/v2/")).status_code == 200
    clock.advance(3600)
    r = await with_token.get("/v2/")
    assert r.status_code == 401 and r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    # An expiry in the past, by the same clock, is refused.
    r = await dockyard.client((user, password)).post(
        f"{API}/accounts/{user}/tokens",
        json={"name": "late", "scope": "read-only", "repositories": [], "expiresAt": expires.isoformat()})
    assert r.status_code in (400, 422), r.text


async def test_upload_sessions_age_by_the_clock(dockyard: Dockyard, client: httpx.AsyncClient, clock: Clock) -> None:
    r = await client.post("/v2/admin/app/blobs/uploads/")
    assert r.status_code == 202, r.text
    location = r.headers["location"]
    upload_id = location.rstrip("/").rsplit("/", 1)[1]
    age = timedelta(hours=dockyard.services.settings.upload_purge_age_hours)
    clock.advance(age.total_seconds() - 1)
    assert purge_uploads(dockyard.services.uploads, age) == []
    clock.advance(2)
    assert purge_uploads(dockyard.services.uploads, age) == [upload_id]
    assert (await client.get(location)).status_code == 404


def test_synchronous_tests_get_an_inprocess_server(server: InProcessServer) -> None:
    with server.client(auth=None) as anonymous:
        assert anonymous.get("/v2/").status_code == 401
    with server.client() as admin:
        r = admin.post(f"{API}/accounts", json={"type": "user", "name": "ishmael", "password": "ishmael-pw",
                                                "role": "none"})
        assert r.status_code == 201, r.text
    assert any(e["topic"].startswith("dockyard.") for e in server.events())
