"""The portal's repository listings (`Repositories`, an organization's `Repositories` tab):
pages of 50 by name with a `Next page` link, and `/api/v0/repositories[/{namespace}]` paged by
its cursor, holding exactly the repositories the viewer may read with their level, as `domain.access` decides one by one — the policy folded into the
query (`RegistryQueries.readable_repositories`), on both backends."""

from __future__ import annotations

import re

import httpx
import pytest

from dockyard.api.portal.repositories import PAGE
from dockyard.api.settings import Settings
from dockyard.domain.access import Principal
from tests.conftest import ADMIN_PASSWORD, BACKENDS
from tests.inprocess.conftest import API, BASE_URL, Dockyard, inprocess_settings

pytestmark = pytest.mark.anyio
ROW = re.compile(r'<tr>\s*<td><a href="/repositories/([^"]+)">.*?<td data-label="Your access">([^<]*)</td>', re.S)
NEXT = re.compile(r'<a href="([^"]+)" rel="next">')


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest) -> Settings:
    if request.param == "postgres":
        return inprocess_settings(database_url=request.getfixturevalue("postgres").create())
    return inprocess_settings()


async def _signed_in(dockyard: Dockyard, name: str, password: str) -> httpx.AsyncClient:
    page = httpx.AsyncClient(transport=httpx.ASGITransport(app=dockyard.app), base_url=BASE_URL)
    form = (await page.get("/login")).text
    token = re.search(r'name="csrf_token" value="([^"]*)"', form).group(1)  # type: ignore[union-attr]
    assert (await page.post("/login", data={"username": name, "password": password,
                                            "csrf_token": token})).status_code == 303
    return page


async def _every_page(page: httpx.AsyncClient, path: str) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    while path:
        html = (await page.get(path)).text
        found = ROW.findall(html)
        assert len(found) <= PAGE
        rows += found
        more = NEXT.search(html)
        assert more is None or len(found) == PAGE
        path = more.group(1).replace("&amp;", "&") if more else ""
    return rows


async def _every_api_page(api: httpx.AsyncClient, path: str) -> list[tuple[str, str]]:
    """Every page of an /api/v0 repository listing (pages of 40, following the cursor)."""
    rows: list[tuple[str, str]] = []
    cursor = None
    while True:
        r = await api.get(path, params={"limit": 40, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        rows += [(repo["fullName"], repo["accessLevel"]) for repo in body["repositories"]]
        if "link" not in r.headers:
            return rows
        assert len(body["repositories"]) == 40
        cursor = httpx.URL(r.headers["link"].split(">", 1)[0].lstrip("<")).params["cursor"]


async def test_listings_page_what_each_viewer_may_read(dockyard: Dockyard, client: httpx.AsyncClient) -> None:
    member, member_pw = await dockyard.user(name="member")
    owner, owner_pw = await dockyard.user(name="owner1")
    nobody, nobody_pw = await dockyard.user(name="nobody")
    reader, reader_pw = await dockyard.user(role="read-only", name="reader")
    await dockyard.org(name="acme")
    await dockyard.org(name="acme-x")  # a namespace whose name starts like acme's: not on acme's tab
    assert (await client.put(f"{API}/accounts/acme/teams/owners/members/{owner}")).status_code == 200
    await dockyard.team("acme", "core", members=[member])
    for i in range(130):
        org = "acme" if i % 5 else "acme-x"
        visibility = "public" if i % 7 == 0 else "private"
        r = await client.post(f"{API}/repositories/{org}", json={"name": f"r{i:03d}", "visibility": visibility})
        assert r.status_code == 201, r.text
        if i % 3 == 0 and org == "acme":
            await dockyard.grant(f"acme/r{i:03d}", "core", "read-write" if i % 2 else "read-only")
    r = await client.post(f"{API}/repositories/{member}", json={"name": "own", "visibility": "private"})
    assert r.status_code == 201
    assert (await client.delete(f"{API}/repositories/acme/r001")).status_code in (200, 202, 204)

    management = dockyard.services.management
    live = dockyard.services.registry_view.search_repositories(None, None, 10_000, None)
    everything = sorted(r["name"] for r in live)
    viewers = {"admin": ("admin", ADMIN_PASSWORD), "member": (member, member_pw), "owner": (owner, owner_pw),
               "nobody": (nobody, nobody_pw), "reader": (reader, reader_pw)}
    for kind, (name, password) in viewers.items():
        principal = Principal(name, "admin" if kind == "admin" else "read-only" if kind == "reader" else "none")
        expected = [(full, level) for full in everything
                    if (level := management.repository_level(principal, full)) != "none"]
        page = await _signed_in(dockyard, name, password)
        try:
            assert await _every_page(page, "/repositories") == expected, kind
            shown = await _every_page(page, "/organizations/acme")
            assert shown == [(full, level) for full, level in expected if full.startswith("acme/")], kind
        finally:
            await page.aclose()
        async with dockyard.client((name, password)) as api:  # /api/v0 lists through the same query
            assert await _every_api_page(api, f"{API}/repositories") == expected, kind
            shown = await _every_api_page(api, f"{API}/repositories/acme")
            assert shown == [(full, level) for full, level in expected if full.startswith("acme/")], kind
    assert len([f for f in everything if f.startswith("acme/")]) > 2 * PAGE  # the admin's tab has three pages


async def test_the_audit_tab_filters_and_exports_what_the_viewer_may_read(dockyard: Dockyard) -> None:
    """`Audit`: the filters narrow the trail, the JSONL and CSV exports carry the same rows
    (with the session, no API credentials), and a plain user sees only their own actions."""
    import csv
    import io
    import json

    alice, alice_pw = await dockyard.user(name="alice1")
    async with dockyard.client((alice, alice_pw)) as as_alice:
        await dockyard.push(as_alice, f"{alice}/app", "v1")
    await dockyard.push(dockyard.client(), "admin/other", "v1")
    services = dockyard.services
    assert services.read_side.wait("audit", services.read_side.head(), 5.0)
    query = {"repository": f"{alice}/app", "action": "tag.moved"}
    admin = await _signed_in(dockyard, "admin", ADMIN_PASSWORD)
    try:
        html = (await admin.get("/audit", params=query)).text
        assert html.count('<td data-label="Action"><code>tag.moved</code></td>') == 1 and f"{alice}/app" in html
        lines = (await admin.get("/audit/export", params={**query, "format": "jsonl"})).text.splitlines()
        [moved] = [json.loads(line) for line in lines]
        assert moved["actor"] == alice and moved["tag"] == "v1" and moved["action"] == "tag.moved"
        exported = (await admin.get("/audit/export", params={**query, "format": "csv"}))
        assert exported.headers["content-disposition"] == 'attachment; filename="audit.csv"'
        [row] = list(csv.DictReader(io.StringIO(exported.text)))
        assert row["actor"] == alice and row["repository"] == f"{alice}/app"
    finally:
        await admin.aclose()
    page = await _signed_in(dockyard, alice, alice_pw)
    try:
        lines = (await page.get("/audit/export", params={"format": "jsonl"})).text.splitlines()
        assert lines and {json.loads(line)["actor"] for line in lines} == {alice}
        assert "admin/other" not in (await page.get("/audit")).text
    finally:
        await page.aclose()


async def test_new_repository_offers_the_namespaces_the_policy_allows(dockyard: Dockyard,
                                                                      client: httpx.AsyncClient) -> None:
    """`New Repository`'s namespace dropdown: exactly the accounts where `may_create_repository`
    (the policy, one account at a time) says yes — for an admin, an owner, a member, a plain user."""
    owner, owner_pw = await dockyard.user(name="owner2")
    member, member_pw = await dockyard.user(name="member2")
    for org in ("beta", "alpha", "gamma"):
        await dockyard.org(name=org)
    for org in ("beta", "gamma"):
        assert (await client.put(f"{API}/accounts/{org}/teams/owners/members/{owner}")).status_code == 200
    await dockyard.team("alpha", "core", members=[member, owner])
    management = dockyard.services.management
    accounts = [row["name"] for row in dockyard.services.identity_view.accounts()]
    for name, password, role in (("admin", ADMIN_PASSWORD, "admin"), (owner, owner_pw, "none"),
                                 (member, member_pw, "none")):
        principal = Principal(name, role)
        expected = [n for n in accounts if management.may_create_repository(principal, f"{n}/x")]
        page = await _signed_in(dockyard, name, password)
        try:
            html = (await page.get("/repositories/new")).text
        finally:
            await page.aclose()
        select = re.search(r'<select id="f-namespace".*?</select>', html, re.S)
        assert select is not None
        assert re.findall(r'<option value="([^"]+)"', select.group(0)) == expected, name
    assert len(expected) == 1 and expected == [member]  # the last: a member, not an owner, of alpha
