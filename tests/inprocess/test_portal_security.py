"""The portal's security properties, in-process (no browser needed to show them):
CSRF on every form, a new session id at each sign-in, escaping, the CSP header, a deactivated
user's session ending, idle expiry (with a clock, no sleeping), throttled sign-ins, and pages
for what a user cannot read answering 404."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD
from tests.inprocess.conftest import BASE_URL, Clock, Dockyard

pytestmark = pytest.mark.anyio


def browser(dockyard: Dockyard) -> httpx.AsyncClient:
    """A cookie-keeping client with no credentials of its own, like a browser."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=dockyard.app), base_url=BASE_URL,
                             follow_redirects=False)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]*)"', html)
    assert match, "the page has no CSRF field"
    return match.group(1)


async def sign_in(page: httpx.AsyncClient, user: str, password: str) -> httpx.Response:
    form = await page.get("/login")
    return await page.post("/login", data={"username": user, "password": password,
                                           "csrf_token": csrf_of(form.text), "next": "/repositories"})


async def test_sign_in_starts_a_new_session_with_safe_cookie_flags(dockyard: Dockyard) -> None:
    alice, password = await dockyard.user()
    async with browser(dockyard) as page:
        page.cookies.set("dockyard_session", "planted-by-an-attacker", domain="dockyard.test")
        answer = await sign_in(page, alice, password)
        assert answer.status_code == 303 and answer.headers["location"] == "/repositories"
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
        first = page.cookies["dockyard_session"]
        assert first != "planted-by-an-attacker"
        await sign_in(page, alice, password)
        assert page.cookies["dockyard_session"] != first  # every sign-in: a fresh id
        page.cookies.set("dockyard_session", first, domain="dockyard.test")
        assert (await page.get("/repositories")).status_code == 303  # the old one ended


async def test_a_form_without_its_csrf_token_is_refused(dockyard: Dockyard) -> None:
    alice, password = await dockyard.user()
    async with browser(dockyard) as page:
        await sign_in(page, alice, password)
        refused = await page.post("/organizations/new", data={"name": "acme"})
        assert refused.status_code == 403
        wrong = await page.post("/organizations/new", data={"name": "acme", "csrf_token": "guess"})
        assert wrong.status_code == 403
        assert (await dockyard.client().get("/api/v0/accounts/acme")).status_code == 404
        form = await page.get("/organizations/new")
        made = await page.post("/organizations/new", data={"name": "acme", "csrf_token": csrf_of(form.text)})
        assert made.status_code == 303
        # The sign-in form has its own token (there is no session yet).
    async with browser(dockyard) as page:
        assert (await page.post("/login", data={"username": alice, "password": password})).status_code == 403


async def test_names_and_descriptions_are_shown_escaped(dockyard: Dockyard, client: httpx.AsyncClient) -> None:
    created = await client.post("/api/v0/repositories/admin", json={
        "name": "web", "visibility": "public", "description": "<script>alert('x')</script>"})
    assert created.status_code == 201, created.text
    async with browser(dockyard) as page:
        await sign_in(page, "admin", ADMIN_PASSWORD)
        for path in ("/repositories", "/repositories/admin/web"):
            html = (await page.get(path)).text
            assert "<script>alert" not in html
            assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html


async def test_pages_forbid_framing_and_inline_script(dockyard: Dockyard) -> None:
    async with browser(dockyard) as page:
        answer = await page.get("/login")
        csp = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert answer.headers["x-frame-options"] == "DENY"
        assert "<script>" not in answer.text  # no inline script: only /portal-assets/portal.js


async def test_a_deactivated_users_session_ends(dockyard: Dockyard, client: httpx.AsyncClient) -> None:
    alice, password = await dockyard.user()
    async with browser(dockyard) as page:
        await sign_in(page, alice, password)
        assert (await page.get("/repositories")).status_code == 200
        assert (await client.patch(f"/api/v0/accounts/{alice}", json={"active": False})).status_code == 200
        assert (await page.get("/repositories")).status_code == 303


async def test_an_idle_session_expires(dockyard: Dockyard, clock: Clock) -> None:
    alice, password = await dockyard.user()
    async with browser(dockyard) as page:
        await sign_in(page, alice, password)
        clock.advance(29 * 60)
        assert (await page.get("/repositories")).status_code == 200  # and that request slides the window
        clock.advance(29 * 60)
        assert (await page.get("/repositories")).status_code == 200
        clock.advance(31 * 60)
        answer = await page.get("/repositories")
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


async def test_wrong_passwords_are_throttled_like_the_api(dockyard: Dockyard) -> None:
    alice, _ = await dockyard.user()
    async with browser(dockyard) as page:
        statuses = [(await sign_in(page, alice, "wrong-password")).status_code for _ in range(6)]
    assert statuses[0] == 401 and statuses[-1] == 429


async def test_what_a_user_cannot_read_is_not_found(dockyard: Dockyard, client: httpx.AsyncClient) -> None:
    alice, password = await dockyard.user()
    await client.post("/api/v0/repositories/admin", json={"name": "secret", "visibility": "private"})
    async with browser(dockyard) as page:
        await sign_in(page, alice, password)
        assert (await page.get("/repositories/admin/secret")).status_code == 404
        assert "admin/secret" not in (await page.get("/repositories")).text
        assert (await page.get("/users")).status_code == 404  # admins only
        assert (await page.get("/settings/auth")).status_code == 404


async def test_sign_in_never_redirects_off_site(dockyard: Dockyard) -> None:
    alice, password = await dockyard.user()
    async with browser(dockyard) as page:
        form = await page.get("/login?next=//evil.example/x")
        answer = await page.post("/login", data={"username": alice, "password": password,
                                                 "csrf_token": csrf_of(form.text), "next": "//evil.example/x"})
        assert answer.headers["location"] == "/repositories"


SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


async def test_script_in_a_tag_or_name_is_refused_or_shown_escaped(dockyard: Dockyard,
                                                                   client: httpx.AsyncClient) -> None:
    from dockyard.domain.names import is_valid_tag

    assert not is_valid_tag(SCRIPT)  # a tag of that name cannot be pushed, so it is never listed
    org = await dockyard.org()
    r = await client.post(f"/api/v0/accounts/{org}/teams", json={"name": "core", "description": SCRIPT})
    assert r.status_code == 201, r.text
    await client.post("/api/v0/repositories/admin", json={"name": "web", "visibility": "private"})
    async with browser(dockyard) as page:
        await sign_in(page, "admin", ADMIN_PASSWORD)
        token = csrf_of((await page.get("/organizations/new")).text)
        shown = [  # names typed into forms come back in the refused form; names in paths and queries
            await page.post("/organizations/new", data={"name": SCRIPT, "csrf_token": token}),
            await page.post("/repositories/new", data={"namespace": "admin", "name": SCRIPT, "csrf_token": token}),
            await page.post(f"/organizations/{org}/teams/new", data={"name": SCRIPT, "csrf_token": token}),
            await page.post("/tokens", data={"name": SCRIPT, "level": "read-only", "csrf_token": token}),
            await page.get(f"/organizations/{org}", params={"tab": "teams"}),
            await page.get(f"/organizations/{org}/teams/core"),
            await page.get("/repositories", params={"q": SCRIPT}),
            await page.get(f"/repositories/admin/web/tags/{SCRIPT}/delete"),
            await page.get("/audit", params={"actor": SCRIPT}),
        ]
        for answer in shown:
            assert answer.status_code < 500, answer.text
            assert "<script>alert" not in answer.text, str(answer.url)
        assert all(ESCAPED in a.text for a in shown[:7]), [str(a.url) for a in shown if ESCAPED not in a.text]


async def test_the_session_cookie_is_secure_under_tls(dockyard: Dockyard) -> None:
    alice, password = await dockyard.user()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=dockyard.app), base_url="https://dockyard.test",
                                 follow_redirects=False) as page:
        answer = await sign_in(page, alice, password)
        assert answer.status_code == 303
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("dockyard_session=") and "; secure" in cookie.lower()
    async with browser(dockyard) as page:  # plain HTTP (a test server, a proxy that ends TLS): not Secure
        cookie = (await sign_in(page, alice, password)).headers["set-cookie"]
        assert "secure" not in cookie.lower()


async def test_a_duplicate_team_name_is_refused_next_to_its_field(dockyard: Dockyard,
                                                                  client: httpx.AsyncClient) -> None:
    org = await dockyard.org()
    assert (await client.post(f"/api/v0/accounts/{org}/teams", json={"name": "core"})).status_code == 201
    async with browser(dockyard) as page:
        await sign_in(page, "admin", ADMIN_PASSWORD)
        token = csrf_of((await page.get(f"/organizations/{org}/teams/new")).text)
        answer = await page.post(f"/organizations/{org}/teams/new", data={"name": "core", "csrf_token": token})
    assert answer.status_code == 409  # the API's answer for the same refusal
    field = re.search(r'<div class="field has-error">\s*<label for="f-name">Name</label>.*?</div>', answer.text, re.S)
    assert field and "already exists" in field.group(0) and 'aria-describedby="e-name"' in field.group(0)
