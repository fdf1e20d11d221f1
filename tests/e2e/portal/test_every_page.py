"""Every portal page in a real browser at 1280×800 and at phone width, screenshotted beside the
tests (looked at: nothing overlaps or is cut off), plus what the lab test does not walk through:
access tokens (the secret shown once, copied with the button), a user deactivated and activated,
the logs of a component, a refused action shown next to its field, keyboard navigation."""

from __future__ import annotations

import pytest

from tests.e2e.portal.conftest import both_widths, sign_in
from tests.server import DockyardServer

pytestmark = pytest.mark.e2e


UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                  && !el.getAttribute('aria-labelledby') && !(el.tagName === 'BUTTON' && el.textContent.trim()))
  .map((el) => el.outerHTML.slice(0, 120))"""


def assert_every_field_labelled(page) -> None:  # noqa: ANN001
    """Every field and button of the page has an accessible name (a label, or its text)."""
    assert page.evaluate(UNLABELLED) == [], page.url


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

    hook = admin.post("/api/v0/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["push"],
                                                "namespace": "engineering", "secret": "s" * 16})
    hook.raise_for_status()
    admin.post("/api/v0/accounts/engineering/teams", json={"name": "core"}).raise_for_status()
    for path, name in [("/repositories", "repositories"), ("/repositories/new", "repository-new"),
                       ("/organizations", "organizations"), ("/organizations/new", "organization-new"),
                       ("/organizations/engineering?tab=teams", "organization-teams"),
                       ("/organizations/engineering/teams/new", "team-new"), ("/users", "users"),
                       ("/settings/storage", "settings-storage"), ("/settings/license", "settings-license"),
                       ("/tokens", "tokens"), ("/webhooks", "webhooks"), (f"/webhooks/{hook.json()['id']}", "webhook"),
                       ("/repositories/engineering/web/delete", "confirm-delete-page"),
                       ("/repositories/nobody/nothing", "not-found")]:
        page.goto(server.url + path)
        assert_every_field_labelled(page)
        both_widths(page, name)
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()

    # The dialogs: Add user (Users), Add members (New team).
    page.goto(server.url + "/users")
    page.get_by_role("button", name="Add user").click()
    assert_every_field_labelled(page)
    both_widths(page, "add-user-dialog", full_page=False)
    page.goto(server.url + "/organizations/engineering/teams/new")
    page.get_by_role("button", name="Add members").click()
    both_widths(page, "add-members-dialog", full_page=False)
    page.get_by_role("dialog", name="Add members").get_by_role("button", name="Done").click()

    # A duplicate team name: refused, and said next to the Name field.
    page.get_by_label("Name", exact=True).fill("core")
    page.get_by_role("button", name="Create team").click()
    expect(page.locator("#e-name")).to_contain_text("already exists")
    both_widths(page, "team-new-error")

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

    # Users: change a Global role.
    page.get_by_label("Global role of moby").select_option(label="Read-write - all repositories")
    page.get_by_role("button", name="Change role of moby").click()
    expect(page.get_by_label("Global role of moby")).to_have_value("read-write")

    # A team's Add repository with an existing repository: granted, its visibility unchanged.
    page.goto(server.url + "/organizations/engineering/teams/core")
    page.get_by_role("button", name="Add repository").click()
    dialog = page.get_by_role("dialog", name="Add repository")
    dialog.get_by_label("Repository name").fill("web")
    dialog.get_by_label("Permission").select_option(label="Read-write")
    dialog.get_by_role("button", name="Done").click()
    expect(page.get_by_role("row").filter(has_text="engineering/web")).to_contain_text("read-write")

    # A repository's settings: Description saved; then Delete, confirmed by typing DELETE.
    page.goto(server.url + "/repositories/engineering/web")
    expect(page.get_by_role("cell", name="core", exact=True)).to_be_visible()  # its team access
    expect(page.locator(".badge.public")).to_be_visible()
    page.get_by_label("Description").fill("The front end, <i>escaped</i>")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".lead")).to_have_text("The front end, <i>escaped</i>")
    page.get_by_role("link", name="Delete", exact=True).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Type DELETE to confirm").fill("DELETE")
    dialog.get_by_role("button", name="Delete").click()
    page.wait_for_url("**/repositories")
    expect(page.get_by_role("link", name="engineering/web")).to_have_count(0)

    # Logs: a component's recent lines (the GC run below logs under `gc`).
    page.goto(server.url + "/logs")
    assert_every_field_labelled(page)
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
