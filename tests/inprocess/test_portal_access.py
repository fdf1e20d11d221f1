"""Every portal page and form, tried by every kind of visitor: allowed or refused as the API's
access model says. A route without a case fails `test_every_portal_route_has_a_case`.

Visitors: anonymous (no session), `user` (role none, no memberships), `member` (in team
`frontend`, read-write on `<org>/madrid`), `owner` (in the organisation's owners team) and
`admin` (global role admin). Refused: anonymous is sent to the sign-in page; signed-in
visitors get 404 for what they may not see (as the API answers for unreadable repositories
and admin-only pages) or 403 for what they see but may not change.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

from dockyard.api import portal
from dockyard.domain.access import Principal
from tests.conftest import ADMIN_PASSWORD
from tests.inprocess.conftest import BASE_URL, Dockyard

pytestmark = pytest.mark.anyio

VISITORS = ("anonymous", "user", "member", "owner", "admin")
SIGNED_IN = frozenset(VISITORS) - {"anonymous"}
ADMIN = frozenset({"admin"})
MANAGERS = frozenset({"owner", "admin"})
READERS = frozenset({"member", "owner", "admin"})


@dataclass
class World:
    org: str
    repo: str  # <org>/madrid: private, frontend has read-write
    tag: str
    users: dict[str, tuple[str, str]]
    webhooks: dict[str, str]  # per visitor (each may delete its own), and "shared"
    delivery: str  # "<webhook>/deliveries/<delivery>": one recorded attempt, to redeliver


def _unique() -> str:
    return uuid.uuid4().hex[:6]


@dataclass(frozen=True)
class Case:
    method: str
    route: str
    allowed: frozenset[str]
    build: Callable[[World, str], tuple[str, dict[str, Any]]]  # (path, form)


def _same(path: str) -> Callable[[World, str], tuple[str, dict[str, Any]]]:
    return lambda w, v: (path.format(org=w.org, repo=w.repo, tag=w.tag), {})


CASES = [
    Case("GET", "/", SIGNED_IN, _same("/")),
    Case("GET", "/login", frozenset(VISITORS), _same("/login")),
    Case("POST", "/login", frozenset(), lambda w, v: ("/login", {"username": "nobody", "password": "x"})),
    Case("POST", "/logout", SIGNED_IN, _same("/logout")),
    Case("GET", "/repositories", SIGNED_IN, _same("/repositories")),
    Case("GET", "/repositories/new", SIGNED_IN, _same("/repositories/new")),
    Case("POST", "/repositories/new", SIGNED_IN,
         lambda w, v: ("/repositories/new", {"namespace": w.users[v][0] if v in w.users else "admin",
                                             "name": "own" + _unique(), "visibility": "private"})),
    Case("GET", "/repositories/{namespace}/{repo:path}", READERS, _same("/repositories/{repo}")),
    Case("GET", "/repositories/{namespace}/{repo:path}/tags/{tag}/delete", READERS,
         _same("/repositories/{repo}/tags/{tag}/delete")),
    Case("POST", "/repositories/{namespace}/{repo:path}/tags/{tag}/delete", READERS,
         lambda w, v: (f"/repositories/{w.repo}/tags/del-{v}/delete", {"confirm": "DELETE"})),
    Case("GET", "/repositories/{namespace}/{repo:path}/delete", MANAGERS, _same("/repositories/{repo}/delete")),
    Case("POST", "/repositories/{namespace}/{repo:path}/delete", MANAGERS,
         lambda w, v: (f"/repositories/{w.org}/gone-{v}/delete", {"confirm": "DELETE"})),
    Case("POST", "/repositories/{namespace}/{repo:path}/settings", MANAGERS,
         lambda w, v: (f"/repositories/{w.repo}/settings", {"visibility": "private", "description": v})),
    Case("GET", "/organizations", SIGNED_IN, _same("/organizations")),
    Case("GET", "/organizations/new", SIGNED_IN, _same("/organizations/new")),
    Case("POST", "/organizations/new", SIGNED_IN, lambda w, v: ("/organizations/new", {"name": "o" + _unique()})),
    Case("GET", "/organizations/{org}", SIGNED_IN, _same("/organizations/{org}")),
    Case("GET", "/organizations/{org}/teams/new", MANAGERS, _same("/organizations/{org}/teams/new")),
    Case("POST", "/organizations/{org}/teams/new", MANAGERS,
         lambda w, v: (f"/organizations/{w.org}/teams/new", {"name": "t" + _unique()})),
    Case("GET", "/organizations/{org}/teams/{team}", SIGNED_IN, _same("/organizations/{org}/teams/frontend")),
    Case("POST", "/organizations/{org}/teams/{team}/members", MANAGERS,
         lambda w, v: (f"/organizations/{w.org}/teams/frontend/members", {"member": w.users["user"][0]})),
    Case("POST", "/organizations/{org}/teams/{team}/members/{user}/remove", MANAGERS,
         lambda w, v: (f"/organizations/{w.org}/teams/frontend/members/{w.users['user'][0]}/remove", {})),
    Case("POST", "/organizations/{org}/teams/{team}/repositories", MANAGERS,
         lambda w, v: (f"/organizations/{w.org}/teams/frontend/repositories",
                       {"repository": "r" + _unique(), "permission": "read-only", "visibility": "private"})),
    Case("POST", "/organizations/{org}/teams/{team}/repositories/{repo:path}/remove", MANAGERS,
         lambda w, v: (f"/organizations/{w.org}/teams/frontend/repositories/keep-{v}/remove", {})),
    Case("GET", "/users", ADMIN, _same("/users")),
    Case("POST", "/users/new", ADMIN,
         lambda w, v: ("/users/new", {"username": "n" + _unique(), "password": "a-long-password", "role": "none"})),
    Case("POST", "/users/{name}/role", ADMIN, lambda w, v: (f"/users/{w.users['user'][0]}/role", {"role": "none"})),
    Case("POST", "/users/{name}/deactivate", ADMIN, lambda w, v: (f"/users/{w.users['spare'][0]}/deactivate", {})),
    Case("POST", "/users/{name}/activate", ADMIN, lambda w, v: (f"/users/{w.users['spare'][0]}/activate", {})),
    Case("GET", "/settings", ADMIN, _same("/settings")),
    Case("GET", "/settings/general", ADMIN, _same("/settings/general")),
    Case("POST", "/settings/general", ADMIN, lambda w, v: ("/settings/general", {"domain_name": ""})),
    Case("GET", "/settings/auth", ADMIN, _same("/settings/auth")),
    Case("POST", "/settings/auth", ADMIN, lambda w, v: ("/settings/auth", {"method": "managed"})),
    Case("GET", "/settings/storage", ADMIN, _same("/settings/storage")),
    Case("POST", "/settings/storage", ADMIN,  # refused (400) for admins: not a storage URL
         lambda w, v: ("/settings/storage", {"url": "ftp://not-a-store"})),
    Case("GET", "/settings/gc", ADMIN, _same("/settings/gc")),
    Case("POST", "/settings/gc", ADMIN, lambda w, v: ("/settings/gc", {"schedule": "0 0 0 * * *", "grace_hours": "1"})),
    Case("POST", "/settings/gc/run", ADMIN, _same("/settings/gc/run")),
    Case("GET", "/settings/license", ADMIN, _same("/settings/license")),
    Case("GET", "/tokens", SIGNED_IN, _same("/tokens")),
    Case("POST", "/tokens", SIGNED_IN, lambda w, v: ("/tokens", {"name": "ci", "level": "read-only"})),
    Case("POST", "/tokens/{token_id}/revoke", frozenset(),  # someone else's token: nobody's to revoke
         lambda w, v: ("/tokens/0000000000000000/revoke", {})),
    Case("GET", "/logs", ADMIN, _same("/logs")),
    Case("GET", "/logs/lines", ADMIN, _same("/logs/lines")),
    Case("GET", "/audit", SIGNED_IN, _same("/audit")),
    Case("GET", "/audit/export", SIGNED_IN, _same("/audit/export?format=csv")),
]


DEAD_RECEIVER = "http://127.0.0.1:9/hook"  # the discard port: nothing listens
CASES += [
    Case("GET", "/webhooks", SIGNED_IN, _same("/webhooks")),
    Case("POST", "/webhooks", MANAGERS, lambda w, v: ("/webhooks", {
        "url": DEAD_RECEIVER, "namespace": w.org, "secret": "s" * 16, "event_push": "1"})),
    Case("GET", "/webhooks/{webhook_id}", MANAGERS, lambda w, v: (f"/webhooks/{w.webhooks['shared']}", {})),
    Case("POST", "/webhooks/{webhook_id}/delete", MANAGERS, lambda w, v: (f"/webhooks/{w.webhooks[v]}/delete", {})),
    Case("POST", "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver", MANAGERS,
         lambda w, v: (f"/webhooks/{w.delivery}/redeliver", {})),
]
NOT_SIGN_IN_PAGES = ("/login", "/tokens/{token_id}/revoke")  # refused otherwise than by a sign-in redirect


def test_every_portal_route_has_a_case() -> None:
    covered = {(c.method, c.route) for c in CASES}
    assert portal.routes() - covered == set(), "portal routes without an access case"
    assert covered - portal.routes() == set(), "cases for routes that do not exist"


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]*)"', html)
    return found.group(1) if found else ""


async def _session(dockyard: Dockyard, visitor: str, world: World) -> tuple[httpx.AsyncClient, str]:
    page = httpx.AsyncClient(transport=httpx.ASGITransport(app=dockyard.app), base_url=BASE_URL)
    if visitor == "anonymous":
        return page, ""
    name, password = ("admin", ADMIN_PASSWORD) if visitor == "admin" else world.users[visitor]
    form = (await page.get("/login")).text
    token = re.search(r'name="csrf_token" value="([^"]*)"', form).group(1)  # type: ignore[union-attr]
    signed = await page.post("/login", data={"username": name, "password": password, "csrf_token": token})
    assert signed.status_code == 303, signed.text
    return page, _csrf((await page.get("/repositories")).text)


async def test_each_visitor_gets_what_the_access_model_allows(dockyard: Dockyard, client: httpx.AsyncClient) -> None:
    users = {kind: await dockyard.user() for kind in ("user", "member", "owner", "spare")}
    org = await dockyard.org()
    await dockyard.team(org, "frontend", members=[users["member"][0]])
    r = await client.put(f"/api/v0/accounts/{org}/teams/owners/members/{users['owner'][0]}")
    assert r.status_code == 200, r.text
    r = await client.post(f"/api/v0/repositories/{org}", json={"name": "madrid", "visibility": "private"})
    assert r.status_code == 201, r.text
    await dockyard.grant(f"{org}/madrid", "frontend", "read-write")
    await dockyard.push(client, f"{org}/madrid", "v1")
    for visitor in VISITORS:  # what each visitor's try may delete or revoke, so that each has its own
        await dockyard.push(client, f"{org}/madrid", f"del-{visitor}")
        for name in (f"gone-{visitor}", f"keep-{visitor}"):
            r = await client.post(f"/api/v0/repositories/{org}", json={"name": name, "visibility": "private"})
            assert r.status_code == 201, r.text
        await dockyard.grant(f"{org}/keep-{visitor}", "frontend", "read-only")
    hooks = {}
    for key in (*VISITORS, "shared"):
        r = await client.post("/api/v0/webhooks", json={"url": DEAD_RECEIVER, "events": ["push"], "namespace": org,
                                                        "secret": "s" * 16})
        assert r.status_code == 201, r.text
        hooks[key] = r.json()["id"]
    await dockyard.push(client, f"{org}/madrid", "hooked")
    world = World(org, f"{org}/madrid", "v1", users, hooks, await _a_delivery(dockyard, hooks["shared"]))

    wrong = []
    for visitor in VISITORS:
        page, csrf = await _session(dockyard, visitor, world)
        try:
            for case in CASES:
                if case.route == "/logout":
                    continue  # tried last: it ends the session
                await _try(page, csrf, case, world, visitor, wrong)
            await _try(page, csrf, next(c for c in CASES if c.route == "/logout"), world, visitor, wrong)
        finally:
            await page.aclose()
    assert not wrong, "\n".join(wrong)


async def _a_delivery(dockyard: Dockyard, webhook: str) -> str:
    """One (failed) delivery attempt of `webhook`, made here rather than waited for."""
    delivery = dockyard.services.webhook_delivery
    subscription = dockyard.services.webhooks.get(Principal("admin", "admin"), webhook)
    assert await anyio.to_thread.run_sync(delivery.read_side.wait, "audit", dockyard.services.read_side.head())
    for _ in range(50):  # the runner may be waiting out a backoff: attempt it here
        if delivery.deliveries(webhook):
            break
        await anyio.to_thread.run_sync(delivery._deliver, subscription)
    return f"{webhook}/deliveries/{delivery.deliveries(webhook)[0]['id']}"


async def _try(page: httpx.AsyncClient, csrf: str, case: Case, world: World, visitor: str,
               wrong: list[str]) -> None:
    path, form = case.build(world, visitor)
    if case.method == "POST":
        answer = await page.post(path, data={**form, "csrf_token": csrf})
    else:
        answer = await page.get(path)
    location = answer.headers.get("location", "")
    to_login = answer.status_code == 303 and location.startswith("/login?next=")  # (logout: plain /login)
    refused = to_login or answer.status_code in (401, 403, 404)
    expected = visitor in case.allowed
    if answer.status_code >= 500 or refused == expected:
        wrong.append(f"{case.method} {path} as {visitor}: {answer.status_code} {location} "
                     f"(expected {'allowed' if expected else 'refused'}) {answer.text[:120]!r}")
    elif refused and visitor == "anonymous" and not to_login and case.route not in NOT_SIGN_IN_PAGES:
        wrong.append(f"{case.method} {path} as anonymous: {answer.status_code}, not sent to sign in")
