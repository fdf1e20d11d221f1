"""Rights removed reach registry JWTs already issued within seconds, and the token endpoint
serves only its own `service`.

Regression tests for issue 7, item 4: a team removal left a registry JWT pulling for the rest
of its life. Every RECHECK_SECONDS the grants of a cached JWT are intersected with what the
policy allows now. The clock is the test's: nothing sleeps.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from dockyard.api.auth import RECHECK_SECONDS
from tests.inprocess.auth_support import ADMIN, basic, create_user, ok
from tests.inprocess.conftest import Clock, InProcessServer

REPO = "eng/app"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@dataclass
class World:
    client: httpx.Client  # anonymous: each request says who it is
    clock: Clock

    def admin(self, method: str, url: str, **kwargs: object) -> None:
        ok(self.client.request(method, url, headers=basic(*ADMIN), **kwargs))  # type: ignore[arg-type]

    def jwt(self, user: str, actions: str = "pull") -> dict[str, str]:
        r = ok(self.client.get("/auth/token", headers=basic(user, f"{user}-password"),
                               params={"service": "dockyard", "scope": f"repository:{REPO}:{actions}"}), 200)
        return {"Authorization": f"Bearer {r.json()['token']}"}


def _push_image(client: httpx.Client) -> None:
    config = json.dumps({"architecture": "amd64"}).encode()
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    ok(client.post(f"/v2/{REPO}/blobs/uploads/", params={"digest": digest}, content=config,
                   headers=basic(*ADMIN)), 201)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [],
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": digest, "size": len(config)}}).encode()
    ok(client.put(f"/v2/{REPO}/manifests/v1", content=manifest,
                  headers={**basic(*ADMIN), "Content-Type": OCI_MANIFEST}), 201)


@pytest.fixture
def world(server: InProcessServer, clock: Clock) -> Iterator[World]:
    with server.client(None) as client:
        w = World(client, clock)
        for name, role in (("tina", "none"), ("moby", "read-only"), ("ahab", "none")):
            create_user(server, name, f"{name}-password", role)
        w.admin("POST", "/api/v0/accounts", json={"type": "organization", "name": "eng"})
        w.admin("POST", "/api/v0/accounts/eng/teams", json={"name": "dev"})
        w.admin("PUT", "/api/v0/accounts/eng/teams/dev/members/tina")
        w.admin("POST", "/api/v0/repositories/eng", json={"name": "app", "visibility": "private"})
        w.admin("PUT", f"/api/v0/repositories/{REPO}/teamAccess/dev", json={"accessLevel": "read-write"})
        _push_image(client)
        yield w


def pull(w: World, bearer: dict[str, str]) -> int:
    return w.client.get(f"/v2/{REPO}/manifests/v1", headers={**bearer, "Accept": OCI_MANIFEST}).status_code


def push(w: World, bearer: dict[str, str]) -> int:
    r = w.client.post(f"/v2/{REPO}/blobs/uploads/", headers=bearer)
    if r.status_code == 202:  # leave no session behind
        w.client.delete(r.headers["location"], headers=bearer)
    return r.status_code


REMOVALS: dict[str, tuple[str, Callable[[World], None]]] = {
    "team removal": ("tina", lambda w: w.admin("DELETE", "/api/v0/accounts/eng/teams/dev/members/tina")),
    "team access revoked": ("tina", lambda w: w.admin("DELETE", f"/api/v0/repositories/{REPO}/teamAccess/dev")),
    "team deleted": ("tina", lambda w: w.admin("DELETE", "/api/v0/accounts/eng/teams/dev")),
    "role lowered": ("moby", lambda w: w.admin("PATCH", "/api/v0/accounts/moby", json={"role": "none"})),
    "made private": ("ahab", lambda w: w.admin("PATCH", f"/api/v0/repositories/{REPO}",
                                               json={"visibility": "private"})),
}


@pytest.mark.parametrize("removal", sorted(REMOVALS))
def test_a_removed_right_reaches_an_issued_jwt_within_the_recheck(world: World, removal: str) -> None:
    user, remove = REMOVALS[removal]
    if removal == "made private":
        world.admin("PATCH", f"/api/v0/repositories/{REPO}", json={"visibility": "public"})
    bearer = world.jwt(user)
    assert pull(world, bearer) == 200  # in use, so cached

    remove(world)
    world.clock.advance(RECHECK_SECONDS + 0.5)
    r = world.client.get(f"/v2/{REPO}/manifests/v1", headers={**bearer, "Accept": OCI_MANIFEST})
    assert r.status_code == 401, (removal, r.text)
    assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]


def test_a_lowered_team_level_keeps_what_remains(world: World) -> None:
    bearer = world.jwt("tina", "pull,push")
    assert push(world, bearer) == 202 and pull(world, bearer) == 200
    world.admin("PUT", f"/api/v0/repositories/{REPO}/teamAccess/dev", json={"accessLevel": "read-only"})
    world.clock.advance(RECHECK_SECONDS + 0.5)
    assert push(world, bearer) == 401
    assert pull(world, bearer) == 200  # pull is still granted, now by the lower level


def test_the_token_endpoint_serves_only_its_own_service(world: World) -> None:
    r = world.client.get("/auth/token", headers=basic("tina", "tina-password"),
                         params={"service": "registry.example.com", "scope": f"repository:{REPO}:pull"})
    assert r.status_code == 400, r.text
    assert "registry.example.com" in r.json()["errors"][0]["message"]
    r = world.client.post("/auth/token", data={"grant_type": "password", "service": "elsewhere",
                                               "client_id": "tests", "username": "tina", "password": "tina-password"})
    assert r.status_code == 400, r.text
    ok(world.client.get("/auth/token", headers=basic("tina", "tina-password"),
                        params={"service": "dockyard", "scope": f"repository:{REPO}:pull"}), 200)
