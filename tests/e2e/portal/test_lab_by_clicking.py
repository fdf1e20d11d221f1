"""The DTR lab (/work/shared/seed/dtr-1.4-lab.md), Tasks 2–4, 6 and 7, done by clicking.

Every control is found by its visible name, the lab's own words (`Settings`, `Auth`,
`Add user`, `Global role`, `New organization`, `New team`, `Add members`, `Done`,
`Create team`, `Add repository`, `Permission`, `Visibility`, `API Docs`); the access the
clicks set up is then tried with skopeo, as the lab's Task 4 does with docker.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e.clients import Skopeo, make_image
from tests.e2e.portal.conftest import both_widths, sign_in
from tests.server import DockyardServer

pytestmark = pytest.mark.e2e

PASSWORDS = {"dtradmin": "dtradmin-pw-1", "gordon": "gordon-pw-1", "orca": "orca-pw-12", "moby": "moby-pw-12",
             "ahab": "ahab-pw-12"}
ROLES = {"gordon": "Admin - all repositories", "orca": "Read-write - all repositories",
         "moby": "Read-only - all repositories", "ahab": "None"}
# DESIGN.md's table: (pull barca, push barca, pull madrid, push madrid)
EXPECTED = {"gordon": (True, True, True, True), "orca": (True, True, True, True),
            "moby": (True, False, True, True), "ahab": (False, False, True, True)}


def add_user(page, name: str, password: str, role: str) -> None:
    page.get_by_role("button", name="Add user").click()
    dialog = page.get_by_role("dialog", name="Add user")
    dialog.get_by_label("Username").fill(name)
    dialog.get_by_label("Password").fill(password)
    dialog.get_by_label("Global role").select_option(label=role)
    dialog.get_by_role("button", name="Save").click()
    page.get_by_role("cell", name=name, exact=True).wait_for()


def new_team(page, org: str, name: str, members: list[str]) -> None:
    page.get_by_role("link", name="Organizations").click()
    page.get_by_role("link", name=org).click()
    page.get_by_role("link", name="Teams").click()
    page.get_by_role("link", name="New team").click()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_role("button", name="Add members").click()
    dialog = page.get_by_role("dialog", name="Add members")
    for member in members:
        dialog.get_by_label(member, exact=True).check()
    dialog.get_by_role("button", name="Done").click()
    page.get_by_role("button", name="Create team").click()
    page.wait_for_url(f"**/organizations/{org}/teams/{name}")


def add_repository(page, org: str, team: str, repository: str, permission: str, visibility: str) -> None:
    page.goto(page.url.split("/organizations/")[0] + f"/organizations/{org}/teams/{team}")
    page.get_by_role("button", name="Add repository").click()
    dialog = page.get_by_role("dialog", name="Add repository")
    dialog.get_by_label("Repository name").fill(repository)
    dialog.get_by_label("Permission").select_option(label=permission)
    dialog.get_by_label("Visibility").select_option(label=visibility)
    dialog.get_by_role("button", name="Done").click()
    page.get_by_role("cell", name=f"{org}/{repository}", exact=True).wait_for()


def skopeo_can(server: DockyardServer, home: Path, user: str, image, repository: str) -> tuple[bool, bool]:
    client = Skopeo(server, home / user, user, PASSWORDS[user])
    pulled = client.copy(client.docker(repository, "lona"), f"oci:{home / user / 'out'}:x", check=False)
    pushed = client.copy(image.ref, client.docker(repository, f"by-{user}"), check=False)
    return pulled.returncode == 0, pushed.returncode == 0


def test_the_lab_by_clicking(portal_server: DockyardServer, context, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    server = portal_server
    page = context.new_page()
    elsewhere: list[str] = []  # no CDN: every page and the console load only from Dockyard itself
    page.on("request", lambda r: None if r.url.startswith((server.url, "data:", "blob:")) else elsewhere.append(r.url))

    # Task 2: Settings > Auth, Managed Authentication, Add user with Global role Admin, sign in as them.
    sign_in(page, server, "admin", server.admin_password)
    both_widths(page, "repositories-empty")
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="Auth").click()
    page.get_by_label("Method").select_option(label="Managed Authentication")
    page.get_by_role("button", name="Save").first.click()
    expect(page.get_by_label("Method")).to_have_value("managed")
    add_user(page, "dtradmin", PASSWORDS["dtradmin"], "Admin - all repositories")
    both_widths(page, "settings-auth")
    # Task 2, step 3: the domain name under General — the node's name as clients reach it (here
    # the loopback address: the token realm follows it, so it must be one skopeo can resolve).
    page.get_by_role("link", name="General").click()
    page.get_by_label("Domain name").fill(server.host)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_label("Domain name")).to_have_value(server.host)
    both_widths(page, "settings-general")
    page.get_by_text("admin", exact=True).first.click()  # the user menu
    page.get_by_role("button", name="Logout").click()
    page.wait_for_url("**/login")
    both_widths(page, "login")
    sign_in(page, server, "dtradmin", PASSWORDS["dtradmin"])

    # Task 3: users with their global roles; organisation engineering; teams core and frontend.
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="Auth").click()
    for user, role in ROLES.items():
        add_user(page, user, PASSWORDS[user], role)
    page.get_by_role("link", name="Organizations").click()
    page.get_by_role("link", name="New organization").click()
    page.get_by_label("Name").fill("engineering")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/organizations/engineering")
    new_team(page, "engineering", "core", ["gordon", "orca"])
    new_team(page, "engineering", "frontend", ["gordon", "moby", "ahab"])
    expect(page.get_by_role("cell", name="ahab", exact=True)).to_be_visible()
    add_repository(page, "engineering", "core", "barca", "Read-only", "Private")
    add_repository(page, "engineering", "frontend", "madrid", "Read-write", "Private")
    both_widths(page, "team")
    page.get_by_role("link", name="Organizations").click()
    page.get_by_role("link", name="engineering").click()
    expect(page.get_by_role("link", name="barca")).to_be_visible()
    expect(page.get_by_role("link", name="madrid")).to_be_visible()
    both_widths(page, "organization")

    # Task 4: an image in both repositories, then each user's pulls and pushes with skopeo.
    image = make_image(tmp_path / "img", [2048, 4096], seed="lab-portal", tag="lona")
    gordon = Skopeo(server, tmp_path / "gordon-push", "gordon", PASSWORDS["gordon"])
    for repository in ("engineering/barca", "engineering/madrid"):
        gordon.copy(image.ref, gordon.docker(repository, "lona"))
    for user, expected in EXPECTED.items():
        barca = skopeo_can(server, tmp_path, user, image, "engineering/barca")
        madrid = skopeo_can(server, tmp_path, user, image, "engineering/madrid")
        assert (*barca, *madrid) == expected, user

    # ... and logged in as ahab, engineering shows madrid and not barca.
    ahab = context.browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    sign_in(ahab, server, "ahab", PASSWORDS["ahab"])
    ahab.get_by_role("link", name="Organizations").click()
    ahab.get_by_role("link", name="engineering").click()
    expect(ahab.get_by_role("link", name="madrid")).to_be_visible()
    expect(ahab.get_by_role("link", name="barca")).to_have_count(0)
    both_widths(ahab, "organization-as-ahab")
    ahab.goto(server.url + "/repositories/engineering/barca")
    expect(ahab.get_by_role("heading", name="Not found")).to_be_visible()
    ahab.context.close()

    # The audit trail answers "who pushed engineering/barca:lona, and from where" (it follows the
    # log a few milliseconds behind: reload until the push is there, bounded).
    page.get_by_role("link", name="Audit").click()
    page.get_by_label("Repository").fill("engineering/barca")
    page.get_by_label("Action").fill("tag.moved")
    page.get_by_role("button", name="Filter").click()
    row = page.get_by_role("row").filter(has_text="lona").filter(has_text="gordon")
    for _ in range(50):
        if row.count():
            break
        page.wait_for_timeout(100)
        page.reload()
    expect(row.first).to_contain_text("127.0.0.1")
    both_widths(page, "audit")

    # Task 6: API Docs opens the console, which answers a call.
    page.get_by_text("dtradmin", exact=True).first.click()
    page.get_by_role("link", name="API Docs").click()
    page.wait_for_url("**/docs")
    operation = page.locator("#operations-repositories-search_repositories_api_v0_repositories_get")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    expect(operation.locator(".live-responses-table tbody .response-col_status").first).to_have_text("200")
    both_widths(page, "api-docs")

    # Task 7: Repositories > engineering/barca, the trash can on lona, typing DELETE; the tag goes,
    # the repository stays.
    # Logout (the user menu), sign in as admin, then Repositories > engineering/barca.
    page.goto(server.url + "/repositories")
    page.get_by_text("dtradmin", exact=True).first.click()
    page.get_by_role("button", name="Logout").click()
    page.wait_for_url("**/login")
    sign_in(page, server, "admin", server.admin_password)
    page.get_by_role("link", name="Repositories", exact=True).click()
    page.get_by_role("link", name="engineering/barca", exact=True).click()
    page.wait_for_url("**/repositories/engineering/barca")
    expect(page.locator("#pull-command")).to_contain_text(f"docker pull {server.host}/engineering/barca")
    both_widths(page, "repository")
    before_delete = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    page.get_by_role("link", name="Delete tag lona").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Type DELETE to confirm").fill("DELETE")
    both_widths(page, "delete-tag-dialog", full_page=False)
    dialog.get_by_role("button", name="Delete").click()
    page.wait_for_url("**/repositories/engineering/barca")
    expect(page.get_by_role("cell", name="lona", exact=True)).to_have_count(0)
    expect(page.get_by_role("heading", name="barca")).to_be_visible()
    tags = Skopeo(server, tmp_path / "gordon-list", "gordon", PASSWORDS["gordon"]).list_tags("engineering/barca")
    assert "lona" not in (tags or [])

    # The log keeps it: the repository "as of" before the delete still shows lona (read only).
    page.get_by_label("As of (UTC)").fill(before_delete)
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("status")).to_contain_text("As of")
    expect(page.get_by_role("cell", name="lona", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Delete tag lona")).to_have_count(0)
    both_widths(page, "repository-as-of")
    page.get_by_role("link", name="Now").click()
    expect(page.get_by_role("cell", name="lona", exact=True)).to_have_count(0)

    # ... and Garbage Collection on the lab's schedule, with its next run shown; a bad one refused.
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="Garbage Collection").click()
    page.get_by_label("Schedule").fill("0 0 0 * * * *")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_be_visible()
    page.get_by_label("Schedule").fill("0 0 0 * * *")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#next-run")).to_contain_text("00:00:00 UTC")
    asked: list[str] = []  # Run now deletes from storage: it asks first (window.confirm)
    page.on("dialog", lambda question: (asked.append(question.message), question.accept()))
    page.get_by_role("button", name="Run now").click()
    expect(page.get_by_role("status")).to_contain_text("freed")
    assert asked and asked[-1].startswith("Run garbage collection now?")
    expect(page.get_by_role("cell", name="done").first).to_be_visible()
    both_widths(page, "settings-gc")
    assert elsewhere == []
