"""Every route of the application, tried as every kind of caller: allowed or denied as the
access model says (DESIGN.md "Access model").

The cases are checked against the application's own route table: a route without a case
here fails `test_every_route_has_a_case`, so a new route cannot go untested.

The world (created through /api/v0 as the initial admin): organisation `engineering`
(owners: admin, olive), team `frontend` (tina) with read-write on the private repository
`engineering/madrid`, which holds one image tagged `v1`. Callers: anonymous; ahab (role
none); moby (read-only); orca (read-write); gordon (admin); tina (team member); olive
(organisation owner); tom (read-write) signing in with a read-only access token.

In-process (tests/inprocess/conftest.py): a fresh app per test, driven through ASGITransport;
the lab scenario and the OCI slice in tests/integration/test_real_server.py check the same
policy through a real server on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from dockyard.api.app import create_app
from dockyard.api import portal
from dockyard.api.settings import Settings
from dockyard.domain.access import Principal
from tests.inprocess.conftest import InProcessServer

CALLERS = ("anonymous", "none", "read-only", "read-write", "admin", "team-member", "owner", "token")
EVERYONE = frozenset(CALLERS)
SIGNED_IN = EVERYONE - {"anonymous"}
PULL = frozenset({"read-only", "read-write", "admin", "team-member", "owner", "token"})
PUSH = frozenset({"read-write", "admin", "team-member", "owner"})
REPO_ADMIN = frozenset({"admin", "owner"})
ORG_MANAGER = frozenset({"admin", "owner"})
GLOBAL_ADMIN = frozenset({"admin"})
USERS = {"none": ("ahab", "none"), "read-only": ("moby", "read-only"), "read-write": ("orca", "read-write"),
         "admin": ("gordon", "admin"), "team-member": ("tina", "none"), "owner": ("olive", "none"),
         "token": ("tom", "read-write")}
REPO = "engineering/madrid"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class World:
    server: InProcessServer
    admin: httpx.Client
    auth: dict[str, tuple[str, str] | None] = field(default_factory=dict)
    blob: str = ""
    manifest: str = ""

    def connect(self, auth: tuple[str, str] | None) -> httpx.Client:
        return self.server.client(auth=auth)

    def client(self, caller: str) -> httpx.Client:
        return self.connect(self.auth[caller])

    def post_as(self, auth: tuple[str, str], path: str, **kwargs: Any) -> httpx.Response:
        with self.connect(auth) as client:
            return client.post(path, **kwargs)

    # -- things a case makes as admin before the caller tries it --------------------------------

    def push_blob(self, data: bytes, repo: str = REPO) -> str:
        digest = _digest(data)
        r = self.admin.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
        assert r.status_code == 201, r.text
        return digest

    def push_manifest(self, tag: str, repo: str = REPO) -> str:
        config = json.dumps({"tag": tag, "n": uuid.uuid4().hex}).encode()
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": self.push_blob(config, repo), "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                       "digest": self.blob, "size": 4096}]}).encode()
        r = self.admin.put(f"/v2/{repo}/manifests/{tag}", content=body, headers={"Content-Type": OCI_MANIFEST})
        assert r.status_code == 201, r.text
        return r.headers["docker-content-digest"]

    def upload(self) -> str:
        r = self.admin.post(f"/v2/{REPO}/blobs/uploads/")
        assert r.status_code == 202, r.text
        return r.headers["location"].rsplit("/", 1)[1]

    def ok(self, response: httpx.Response) -> None:
        assert response.status_code < 300, f"{response.request.method} {response.request.url}: {response.text}"


@dataclass(frozen=True)
class Case:
    """One request on one route; `allowed` is the set of callers that must get through."""

    method: str
    route: str  # the route's path template, as in the route table
    allowed: frozenset[str]
    build: Callable[[World, str], tuple[str, dict[str, Any]]]  # (url, httpx kwargs), after any set-up
    denied_as_missing: bool = False  # a caller who may not read the repository gets 404, as if absent


def _unique(caller: str) -> str:
    return f"{caller.replace('-', '')}{uuid.uuid4().hex[:6]}"


def _new_user(w: World, caller: str) -> str:
    name = "u" + _unique(caller)
    w.ok(w.admin.post("/api/v0/accounts", json={"type": "user", "name": name, "password": "pw-" + name,
                                                 "role": "none"}))
    return name


def _new_team(w: World, caller: str, member: str | None = None) -> str:
    name = "t" + _unique(caller)
    w.ok(w.admin.post("/api/v0/accounts/engineering/teams", json={"name": name}))
    if member:
        w.ok(w.admin.put(f"/api/v0/accounts/engineering/teams/{name}/members/{member}"))
    return name


def _new_repo(w: World, caller: str) -> str:
    name = "r" + _unique(caller)
    w.ok(w.admin.post("/api/v0/repositories/engineering", json={"name": name, "visibility": "private"}))
    w.ok(w.admin.put(f"/api/v0/repositories/engineering/{name}/teamAccess/frontend",
                     json={"accessLevel": "read-write"}))
    return f"engineering/{name}"


def _ahab_token(w: World, caller: str) -> str:
    r = w.post_as(("ahab", "ahab-password"), "/api/v0/accounts/ahab/tokens",
                  json={"name": "t" + _unique(caller), "scope": "read-only"})
    w.ok(r)
    return r.json()["id"]


def _self(w: World, caller: str) -> str:
    """The caller's own user name (ahab's for anonymous)."""
    return USERS.get(caller, ("ahab", ""))[0]


def _own_token(w: World, caller: str) -> str:
    """A token of the caller's own user, made with the user's password."""
    name = _self(w, caller)
    r = w.post_as((name, f"{name}-password"), f"/api/v0/accounts/{name}/tokens",
                  json={"name": "o" + _unique(caller), "scope": "read-only"})
    w.ok(r)
    return r.json()["id"]


# Token management on one's own account: every user signed in with a password, never through an
# access token (tom's read-only, repository-limited one must not list or revoke its siblings).
OWN_TOKENS = SIGNED_IN - {"token"}
V2 = "/v2/{name:path}"
CASES: list[Case] = [
    Case("GET", "/healthz", EVERYONE, lambda w, c: ("/healthz", {})),
    Case("GET", "/readyz", EVERYONE, lambda w, c: ("/readyz", {})),
    Case("GET", "/metrics", EVERYONE, lambda w, c: ("/metrics", {})),
    Case("GET", "/openapi.json", EVERYONE, lambda w, c: ("/openapi.json", {})),
    Case("GET", "/docs", EVERYONE, lambda w, c: ("/docs", {})),
    Case("GET", "/auth/token", EVERYONE, lambda w, c: ("/auth/token", {"params": {
        "service": "dockyard", "scope": f"repository:{REPO}:pull"}})),
    Case("POST", "/auth/token", SIGNED_IN, lambda w, c: ("/auth/token", {"data": {
        "grant_type": "password", "service": "dockyard", "scope": f"repository:{REPO}:pull",
        **({"username": w.auth[c][0], "password": w.auth[c][1]} if w.auth[c] else {})}, "auth": None})),
    Case("GET", "/v2/", SIGNED_IN, lambda w, c: ("/v2/", {})),
    Case("GET", "/v2/_catalog", SIGNED_IN, lambda w, c: ("/v2/_catalog", {})),
    Case("POST", V2 + "/blobs/uploads/", PUSH, lambda w, c: (f"/v2/{REPO}/blobs/uploads/", {})),
    Case("POST", V2 + "/blobs/uploads", PUSH, lambda w, c: (f"/v2/{REPO}/blobs/uploads", {})),
    Case("PATCH", V2 + "/blobs/uploads/{upload_id}", PUSH,
         lambda w, c: (f"/v2/{REPO}/blobs/uploads/{w.upload()}", {"content": b"chunk"})),
    Case("PUT", V2 + "/blobs/uploads/{upload_id}", PUSH,
         lambda w, c: (f"/v2/{REPO}/blobs/uploads/{w.upload()}", {"params": {"digest": _digest(b"")}})),
    Case("GET", V2 + "/blobs/uploads/{upload_id}", PUSH,
         lambda w, c: (f"/v2/{REPO}/blobs/uploads/{w.upload()}", {})),
    Case("DELETE", V2 + "/blobs/uploads/{upload_id}", PUSH,
         lambda w, c: (f"/v2/{REPO}/blobs/uploads/{w.upload()}", {})),
    Case("GET", V2 + "/blobs/{digest}", PULL, lambda w, c: (f"/v2/{REPO}/blobs/{w.blob}", {})),
    Case("HEAD", V2 + "/blobs/{digest}", PULL, lambda w, c: (f"/v2/{REPO}/blobs/{w.blob}", {})),
    Case("DELETE", V2 + "/blobs/{digest}", PUSH,
         lambda w, c: (f"/v2/{REPO}/blobs/{w.push_blob(os.urandom(64))}", {})),
    Case("GET", V2 + "/manifests/{reference}", PULL, lambda w, c: (f"/v2/{REPO}/manifests/v1", {})),
    Case("HEAD", V2 + "/manifests/{reference}", PULL, lambda w, c: (f"/v2/{REPO}/manifests/{w.manifest}", {})),
    Case("PUT", V2 + "/manifests/{reference}", PUSH, lambda w, c: (
        f"/v2/{REPO}/manifests/{_unique(c)}", {"content": w.admin.get(f"/v2/{REPO}/manifests/v1").content,
                                               "headers": {"Content-Type": OCI_MANIFEST}})),
    Case("DELETE", V2 + "/manifests/{reference}", PUSH,
         lambda w, c: (f"/v2/{REPO}/manifests/{w.push_manifest(_unique(c))}", {})),
    Case("GET", V2 + "/tags/list", PULL, lambda w, c: (f"/v2/{REPO}/tags/list", {})),
    Case("GET", V2 + "/referrers/{digest}", PULL, lambda w, c: (f"/v2/{REPO}/referrers/{w.manifest}", {})),
    # -- /api/v0 --------------------------------------------------------------------------------
    Case("POST", "/api/v0/accounts", GLOBAL_ADMIN, lambda w, c: ("/api/v0/accounts", {"json": {
        "type": "user", "name": "n" + _unique(c), "password": "pw-12345", "role": "none"}})),
    Case("GET", "/api/v0/accounts", SIGNED_IN, lambda w, c: ("/api/v0/accounts", {})),
    Case("GET", "/api/v0/accounts/{name}", SIGNED_IN, lambda w, c: ("/api/v0/accounts/moby", {})),
    Case("PATCH", "/api/v0/accounts/{name}", GLOBAL_ADMIN,
         lambda w, c: (f"/api/v0/accounts/{_new_user(w, c)}", {"json": {"role": "read-only"}})),
    Case("DELETE", "/api/v0/accounts/{name}", GLOBAL_ADMIN,
         lambda w, c: (f"/api/v0/accounts/{_new_user(w, c)}", {})),
    Case("POST", "/api/v0/accounts/{org}/teams", ORG_MANAGER,
         lambda w, c: ("/api/v0/accounts/engineering/teams", {"json": {"name": "x" + _unique(c)}})),
    Case("GET", "/api/v0/accounts/{org}/teams", SIGNED_IN, lambda w, c: ("/api/v0/accounts/engineering/teams", {})),
    Case("GET", "/api/v0/accounts/{org}/teams/{team}", SIGNED_IN,
         lambda w, c: ("/api/v0/accounts/engineering/teams/frontend", {})),
    Case("GET", "/api/v0/accounts/{org}/teams/{team}/members", SIGNED_IN,
         lambda w, c: ("/api/v0/accounts/engineering/teams/frontend/members", {})),
    Case("DELETE", "/api/v0/accounts/{org}/teams/{team}", ORG_MANAGER,
         lambda w, c: (f"/api/v0/accounts/engineering/teams/{_new_team(w, c)}", {})),
    Case("PUT", "/api/v0/accounts/{org}/teams/{team}/members/{user}", ORG_MANAGER,
         lambda w, c: (f"/api/v0/accounts/engineering/teams/{_new_team(w, c)}/members/ahab", {})),
    Case("DELETE", "/api/v0/accounts/{org}/teams/{team}/members/{user}", ORG_MANAGER,
         lambda w, c: (f"/api/v0/accounts/engineering/teams/{_new_team(w, c, 'ahab')}/members/ahab", {})),
    Case("POST", "/api/v0/accounts/{user}/tokens", frozenset({"none"}),
         lambda w, c: ("/api/v0/accounts/ahab/tokens", {"json": {"name": _unique(c), "scope": "read-only"}})),
    Case("GET", "/api/v0/accounts/{user}/tokens", frozenset({"none", "admin"}),
         lambda w, c: ("/api/v0/accounts/ahab/tokens", {})),
    Case("DELETE", "/api/v0/accounts/{user}/tokens/{token_id}", frozenset({"none", "admin"}),
         lambda w, c: (f"/api/v0/accounts/ahab/tokens/{_ahab_token(w, c)}", {})),
    Case("POST", "/api/v0/accounts/{user}/tokens", OWN_TOKENS, lambda w, c: (
        f"/api/v0/accounts/{_self(w, c)}/tokens", {"json": {"name": _unique(c), "scope": "read-only"}})),
    Case("GET", "/api/v0/accounts/{user}/tokens", OWN_TOKENS,
         lambda w, c: (f"/api/v0/accounts/{_self(w, c)}/tokens", {})),
    Case("DELETE", "/api/v0/accounts/{user}/tokens/{token_id}", OWN_TOKENS,
         lambda w, c: (f"/api/v0/accounts/{_self(w, c)}/tokens/{_own_token(w, c)}", {})),
    Case("GET", "/api/v0/repositories", EVERYONE, lambda w, c: ("/api/v0/repositories", {})),
    Case("POST", "/api/v0/repositories/{namespace}", REPO_ADMIN,
         lambda w, c: ("/api/v0/repositories/engineering", {"json": {"name": "p" + _unique(c)}})),
    Case("GET", "/api/v0/repositories/{namespace}", EVERYONE, lambda w, c: ("/api/v0/repositories/engineering", {})),
    Case("GET", "/api/v0/repositories/{namespace}/{repo:repository}", PULL,
         lambda w, c: (f"/api/v0/repositories/{REPO}", {}), denied_as_missing=True),
    Case("PATCH", "/api/v0/repositories/{namespace}/{repo:repository}", REPO_ADMIN,
         lambda w, c: (f"/api/v0/repositories/{REPO}", {"json": {"description": f"set by {c}"}}),
         denied_as_missing=True),
    Case("DELETE", "/api/v0/repositories/{namespace}/{repo:repository}", REPO_ADMIN,
         lambda w, c: (f"/api/v0/repositories/{_new_repo(w, c)}", {}), denied_as_missing=True),
    Case("GET", "/api/v0/repositories/{namespace}/{repo:path}/tags", PULL,
         lambda w, c: (f"/api/v0/repositories/{REPO}/tags", {}), denied_as_missing=True),
    Case("DELETE", "/api/v0/repositories/{namespace}/{repo:path}/tags/{tag}", PUSH,
         lambda w, c: (f"/api/v0/repositories/{REPO}/tags/{_tagged(w, c)}", {}), denied_as_missing=True),
    Case("GET", "/api/v0/repositories/{namespace}/{repo:path}/teamAccess", PULL,
         lambda w, c: (f"/api/v0/repositories/{REPO}/teamAccess", {}), denied_as_missing=True),
    Case("PUT", "/api/v0/repositories/{namespace}/{repo:path}/teamAccess/{team}", REPO_ADMIN,
         lambda w, c: (f"/api/v0/repositories/{_new_repo(w, c)}/teamAccess/frontend",
                       {"json": {"accessLevel": "read-only"}}), denied_as_missing=True),
    Case("DELETE", "/api/v0/repositories/{namespace}/{repo:path}/teamAccess/{team}", REPO_ADMIN,
         lambda w, c: (f"/api/v0/repositories/{_new_repo(w, c)}/teamAccess/frontend", {}), denied_as_missing=True),
    # The audit trail answers every signed-in caller, with what they may read (tests/inprocess/test_audit_events.py).
    Case("GET", "/api/v0/events", SIGNED_IN, lambda w, c: ("/api/v0/events", {})),
    # The change feed, as a snapshot (`follow=false` closes; tests/inprocess/test_event_stream.py follows).
    Case("GET", "/api/v0/events/stream", SIGNED_IN, lambda w, c: ("/api/v0/events/stream?follow=false", {})),
    # Webhooks: global admins and the organisation's owners (tests/inprocess/test_webhooks.py).
    Case("POST", "/api/v0/webhooks", ORG_MANAGER,
         lambda w, c: ("/api/v0/webhooks", {"json": {"url": DEAD_RECEIVER, "events": ["push"],
                                                     "namespace": "engineering", "secret": "s" * 16}})),
    Case("GET", "/api/v0/webhooks", SIGNED_IN, lambda w, c: ("/api/v0/webhooks", {})),
    Case("GET", "/api/v0/webhooks/{webhook_id}", ORG_MANAGER,
         lambda w, c: (f"/api/v0/webhooks/{_webhook(w, c)}", {}), denied_as_missing=True),
    Case("DELETE", "/api/v0/webhooks/{webhook_id}", ORG_MANAGER,
         lambda w, c: (f"/api/v0/webhooks/{_webhook(w, c)}", {}), denied_as_missing=True),
    Case("GET", "/api/v0/webhooks/{webhook_id}/deliveries", ORG_MANAGER,
         lambda w, c: (f"/api/v0/webhooks/{_webhook(w, c)}/deliveries", {}), denied_as_missing=True),
    Case("POST", "/api/v0/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver", ORG_MANAGER,
         lambda w, c: (f"/api/v0/webhooks/{_delivery(w, c)}/redeliver", {}), denied_as_missing=True),
    Case("GET", "/api/v0/audit/public-key", EVERYONE, lambda w, c: ("/api/v0/audit/public-key", {})),
    Case("GET", "/api/v0/repositories/{namespace}/{repo:path}/tags/{tag}/history", PULL,
         lambda w, c: (f"/api/v0/repositories/{REPO}/tags/v1/history", {}), denied_as_missing=True),
    Case("GET", "/api/v0/repositories/{namespace}/{repo:path}/activity", PULL,
         lambda w, c: (f"/api/v0/repositories/{REPO}/activity", {}), denied_as_missing=True),
    # What an account could do (now or ?at=): admins, the account itself, the organisation's owners.
    Case("GET", "/api/v0/accounts/{name}/access", frozenset({"admin", "owner", "team-member"}),
         lambda w, c: ("/api/v0/accounts/tina/access", {"params": {"repository": REPO}})),
    # Restores need the delete's rights (for a repository: admin on it as it was before the delete).
    Case("POST", "/api/v0/repositories/{namespace}/{repo:path}/tags/{tag}/restore", PUSH,
         lambda w, c: (f"/api/v0/repositories/{REPO}/tags/{_tagged(w, c)}/restore", {"json": {"digest": w.manifest}}),
         denied_as_missing=True),
    Case("POST", "/api/v0/repositories/{namespace}/{repo:path}/restore", REPO_ADMIN,
         lambda w, c: (f"/api/v0/repositories/{_deleted_repo(w, c)}/restore", {}), denied_as_missing=True),
    Case("GET", "/api/v0/search", EVERYONE, lambda w, c: ("/api/v0/search", {"params": {"q": "madrid"}})),
    Case("GET", "/api/v0/projections", GLOBAL_ADMIN, lambda w, c: ("/api/v0/projections", {})),
    # An admin gets 409 here (the audit trail has not failed): allowed, nothing to retry.
    Case("POST", "/api/v0/projections/{name}/retry", GLOBAL_ADMIN,
         lambda w, c: ("/api/v0/projections/audit/retry", {})),
    Case("PUT", "/api/v0/settings/tls", GLOBAL_ADMIN, lambda w, c: ("/api/v0/settings/tls", {"json": {
        "certificateChain": "not a certificate", "privateKey": "not a key"}})),
    Case("GET", "/api/v0/logs", GLOBAL_ADMIN, lambda w, c: ("/api/v0/logs", {"params": {"component": "api"}})),
    Case("GET", "/api/v0/settings/general", SIGNED_IN, lambda w, c: ("/api/v0/settings/general", {})),
    Case("PUT", "/api/v0/settings/general", GLOBAL_ADMIN,
         lambda w, c: ("/api/v0/settings/general", {"json": {"domainName": ""}})),
    Case("GET", "/api/v0/settings/storage", GLOBAL_ADMIN, lambda w, c: ("/api/v0/settings/storage", {})),
    Case("PUT", "/api/v0/settings/storage", GLOBAL_ADMIN,  # refused (400) for admins: the probe fails
         lambda w, c: ("/api/v0/settings/storage", {"json": {"url": "ftp://not-a-store"}})),
    Case("GET", "/api/v0/settings/auth", GLOBAL_ADMIN, lambda w, c: ("/api/v0/settings/auth", {})),
    Case("GET", "/api/v0/settings/gc", GLOBAL_ADMIN, lambda w, c: ("/api/v0/settings/gc", {})),
    Case("PUT", "/api/v0/settings/gc", GLOBAL_ADMIN,
         lambda w, c: ("/api/v0/settings/gc", {"json": {"schedule": "0 0 0 * * *", "graceHours": 1}})),
    Case("POST", "/api/v0/gc/run", GLOBAL_ADMIN, lambda w, c: ("/api/v0/gc/run", {"json": {"dryRun": True}})),
    Case("GET", "/api/v0/gc/runs", GLOBAL_ADMIN, lambda w, c: ("/api/v0/gc/runs", {})),
    Case("GET", "/api/v0/gc/runs/{run_id}", GLOBAL_ADMIN,  # no such run: 404 for admins, 403 for the rest
         lambda w, c: ("/api/v0/gc/runs/00000000-0000-0000-0000-000000000000", {})),
    Case("PUT", "/api/v0/settings/auth", GLOBAL_ADMIN,
         lambda w, c: ("/api/v0/settings/auth", {"json": {"mode": "managed"}})),
    Case("POST", "/api/v0/settings/auth/ldap/test", GLOBAL_ADMIN, lambda w, c: ("/api/v0/settings/auth/ldap/test", {
        "json": {"url": "ldap://127.0.0.1:1", "bindDn": "", "userBaseDn": "dc=example,dc=org"}})),
]


def _tagged(w: World, caller: str) -> str:
    tag = "d" + _unique(caller)
    w.push_manifest(tag)
    return tag


DEAD_RECEIVER = "http://127.0.0.1:9/hook"  # the discard port: nothing listens, deliveries fail


def _webhook(w: World, caller: str) -> str:
    r = w.admin.post("/api/v0/webhooks", json={"url": DEAD_RECEIVER, "events": ["push"], "namespace": "engineering",
                                               "secret": "s" * 16})
    w.ok(r)
    return str(r.json()["id"])


def _delivery(w: World, caller: str) -> str:
    """A webhook and one (failed) delivery attempt of it, for redelivery."""
    webhook = _webhook(w, caller)
    w.push_manifest("w" + _unique(caller))
    delivery = w.server.services.webhook_delivery
    subscription = w.server.services.webhooks.get(Principal("admin", "admin"), webhook)
    assert delivery.read_side.wait("audit", w.server.services.read_side.head())
    for _ in range(50):  # the runner may be waiting out a backoff: attempt it here
        if delivery.deliveries(webhook):
            break
        delivery._deliver(subscription)
    return f"{webhook}/deliveries/{delivery.deliveries(webhook)[0]['id']}"


def _deleted_repo(w: World, caller: str) -> str:
    """A repository (frontend: read-write) deleted by admin, for a restore."""
    name = _new_repo(w, caller)
    w.ok(w.admin.delete(f"/api/v0/repositories/{name}"))
    return name


def _routes(routes: list[Any]) -> list[tuple[str, set[str]]]:
    """(path, methods) of every endpoint: Starlette routes (/v2/, /auth), and the APIRoutes of
    routers FastAPI includes (/api/v0, which it wraps in included-router objects)."""
    out = []
    for route in routes:
        if hasattr(route, "effective_route_contexts"):
            out += [(ctx.path, set(ctx.methods or ())) for ctx in route.effective_route_contexts()]
        elif getattr(route, "methods", None):
            out.append((route.path, set(route.methods)))
    return out


def _route_table() -> set[tuple[str, str]]:
    """Every API route. The portal's pages (signed in with a session, not with credentials on
    each request) have their own matrix: tests/inprocess/test_portal_access.py."""
    app = create_app(Settings())
    return {(method, path) for path, methods in _routes(app.routes)
            for method in methods if method != "HEAD" or path.startswith("/v2/")} - portal.routes()


def test_every_route_has_a_case() -> None:
    covered = {(c.method, c.route) for c in CASES}
    table = _route_table()
    # HEAD is tried where it is its own pull path (/v2/ blobs and manifests); elsewhere GET covers it.
    untested = {r for r in table - covered if not (r[0] == "HEAD" and ("GET", r[1]) in covered
                                                   and "/blobs/{digest}" not in r[1]
                                                   and "/manifests/" not in r[1])}
    assert not untested, f"routes without an access case: {sorted(untested)}"
    assert not covered - table, f"cases for routes that do not exist: {sorted(covered - table)}"


@pytest.fixture
def world(shared_server: InProcessServer) -> World:
    admin = shared_server.client()
    w = World(shared_server, admin)
    w.auth["anonymous"] = None
    for caller, (name, role) in USERS.items():
        w.ok(admin.post("/api/v0/accounts", json={"type": "user", "name": name, "password": f"{name}-password",
                                                   "role": role}))
        w.auth[caller] = (name, f"{name}-password")
    w.ok(admin.post("/api/v0/accounts", json={"type": "organization", "name": "engineering"}))
    w.ok(admin.put("/api/v0/accounts/engineering/teams/owners/members/olive"))
    w.ok(admin.post("/api/v0/accounts/engineering/teams", json={"name": "frontend"}))
    w.ok(admin.put("/api/v0/accounts/engineering/teams/frontend/members/tina"))
    w.ok(admin.post("/api/v0/repositories/engineering", json={"name": "madrid", "visibility": "private"}))
    w.ok(admin.put(f"/api/v0/repositories/{REPO}/teamAccess/frontend", json={"accessLevel": "read-write"}))
    r = w.post_as(("tom", "tom-password"), "/api/v0/accounts/tom/tokens", json={"name": "ci", "scope": "read-only"})
    w.ok(r)
    w.auth["token"] = ("tom", r.json()["token"])
    w.blob = w.push_blob(os.urandom(4096))
    w.manifest = w.push_manifest("v1")
    yield w
    admin.close()


def test_each_caller_gets_exactly_what_the_access_model_allows(world: World) -> None:
    wrong = []
    for case in CASES:
        for caller in CALLERS:
            url, kwargs = case.build(world, caller)
            auth = kwargs.pop("auth", world.auth[caller])
            with world.connect(auth) as client:
                r = client.request(case.method, url, **kwargs)
            denied = r.status_code in (401, 403) or (case.denied_as_missing and r.status_code == 404)
            expected = caller in case.allowed
            if r.status_code >= 500 or denied == expected:
                wrong.append(f"{case.method} {url} as {caller}: {r.status_code} "
                             f"(expected {'allowed' if expected else 'denied'}) {r.text[:160]}")
            elif denied and case.route.startswith("/v2/") and r.status_code != 404 and case.method != "HEAD":
                # A denial on /v2/ is an OCI error body.
                codes = [e["code"] for e in r.json()["errors"]]
                if not set(codes) <= {"UNAUTHORIZED", "DENIED"}:
                    wrong.append(f"{case.method} {url} as {caller}: denial codes {codes}")
    assert not wrong, "\n".join(wrong)


def test_listings_show_only_what_each_caller_may_read(world: World) -> None:
    for caller in CALLERS:
        with world.client(caller) as client:
            found = client.get("/api/v0/repositories", params={"search": "madrid"})
            assert found.status_code == 200
            names = [r["name"] if "/" in r["name"] else f"{r['namespace']}/{r['name']}"
                     for r in found.json()["repositories"]]
            assert (REPO in names) == (caller in PULL), (caller, names)
            ranked = client.get("/api/v0/search", params={"q": "madrid"}).json()["repositories"]
            assert (REPO in [r["fullName"] for r in ranked]) == (caller in PULL), (caller, ranked)
            if caller != "anonymous":
                catalog = client.get("/v2/_catalog").json()["repositories"]
                assert (REPO in catalog) == (caller in PULL), (caller, catalog)
