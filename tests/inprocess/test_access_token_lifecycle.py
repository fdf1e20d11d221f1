"""An access token that expires or is revoked stops working at every door: as a password on
`/v2/` and `/auth/token`, through the refresh tokens it got, and in the registry JWTs issued for
it (within RECHECK_SECONDS, not at their own expiry). Time is the test's clock: nothing sleeps.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from dockyard.api.auth import RECHECK_SECONDS
from tests.inprocess.auth_support import basic, create_user, ok
from tests.inprocess.conftest import Clock, InProcessServer

USER, PASSWORD = "queequeg", "queequeg-pw"
SCOPE = f"repository:{USER}/app:pull"


def _iso(clock: Clock, seconds: float) -> str:
    return (datetime.fromtimestamp(clock(), UTC) + timedelta(seconds=seconds)).isoformat()


def _token(client: httpx.Client, clock: Clock, expires_in: float) -> dict[str, str]:
    return ok(client.post(f"/api/v0/accounts/{USER}/tokens", headers=basic(USER, PASSWORD), json={
        "name": f"t{expires_in}", "scope": "read-only", "expiresAt": _iso(clock, expires_in)}), 201).json()


def _uses(client: httpx.Client, secret: str) -> tuple[str, dict[str, str]]:
    """A refresh token and a registry JWT (in use, so cached) obtained with the access token."""
    r = ok(client.post("/auth/token", data={"grant_type": "password", "service": "dockyard", "username": USER,
                                            "password": secret, "access_type": "offline",
                                            "scope": f"{SCOPE} registry:catalog:*"}), 200)
    bearer = {"Authorization": f"Bearer {r.json()['access_token']}"}
    ok(client.get("/v2/_catalog", headers=bearer), 200)
    return r.json()["refresh_token"], bearer


def _assert_dead(client: httpx.Client, secret: str, refresh: str, bearer: dict[str, str]) -> None:
    for r in (client.get("/v2/", headers=basic(USER, secret)),
              client.get("/auth/token", headers=basic(USER, secret), params={"service": "dockyard", "scope": SCOPE}),
              client.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh}),
              client.get("/v2/_catalog", headers=bearer)):
        assert r.status_code == 401, (r.request.url, r.text)
        assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    ok(client.get("/v2/", headers=basic(USER, PASSWORD)), 200)  # the password is unaffected


@pytest.fixture
def client(server: InProcessServer) -> httpx.Client:
    create_user(server, USER, PASSWORD)
    return server.client(None)


def test_an_expired_access_token_fails_everywhere(client: httpx.Client, clock: Clock) -> None:
    r = client.post(f"/api/v0/accounts/{USER}/tokens", headers=basic(USER, PASSWORD),
                    json={"name": "stale", "scope": "read-only", "expiresAt": _iso(clock, -60)})
    assert r.status_code in (400, 422), r.text  # an expiry in the past is refused

    token = _token(client, clock, expires_in=60)  # shorter than a registry JWT's 300 s
    refresh, bearer = _uses(client, token["token"])
    clock.advance(59)
    ok(client.get("/v2/", headers=basic(USER, token["token"])), 200)
    clock.advance(1)
    _assert_dead(client, token["token"], refresh, bearer)


def test_a_revoked_access_token_fails_everywhere_within_the_recheck(client: httpx.Client, clock: Clock) -> None:
    token = _token(client, clock, expires_in=86400)
    refresh, bearer = _uses(client, token["token"])
    ok(client.delete(f"/api/v0/accounts/{USER}/tokens/{token['id']}", headers=basic(USER, PASSWORD)), 204)
    clock.advance(RECHECK_SECONDS)
    _assert_dead(client, token["token"], refresh, bearer)
