"""The portal's search box (`/repositories?q=`) answers from the search projection: ranked, and
a repository the viewer cannot read is not on the page."""

from __future__ import annotations

import re

import pytest

from tests.inprocess.conftest import API, Dockyard
from tests.inprocess.test_tag_history import named_user

pytestmark = pytest.mark.anyio


async def test_the_search_box_ranks_and_shows_only_what_the_viewer_may_read(dockyard: Dockyard) -> None:
    name, password = await named_user(dockyard, "ahab")
    await dockyard.org(name="engineering")
    admin = dockyard.client()
    for repo, visibility in (("barca", "private"), ("old-barca", "public"), ("barca-b", "public")):
        r = await admin.post(f"{API}/repositories/engineering", json={"name": repo, "visibility": visibility})
        assert r.status_code == 201, r.text
    page = dockyard.client(None)
    form = (await page.get("/login")).text
    token = re.search(r'name="csrf_token" value="([^"]*)"', form).group(1)  # type: ignore[union-attr]
    signed = await page.post("/login", data={"username": name, "password": password, "csrf_token": token})
    assert signed.status_code == 303, signed.text
    html = (await page.get("/repositories", params={"q": "barca"})).text
    shown = re.findall(r'href="/repositories/(engineering/[\w.-]+)"', html)
    assert "engineering/barca" not in shown
    assert [r for r in dict.fromkeys(shown)] == ["engineering/barca-b", "engineering/old-barca"]  # prefix first
