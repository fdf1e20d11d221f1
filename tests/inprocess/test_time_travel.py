"""`?at=` (an RFC 3339 time or a log position) on a repository, its tags, its team access and
the listings, and `GET /api/v0/accounts/{name}/access?repository=…&at=…`: answers as of that
instant, through the same policy as today."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD
from tests.inprocess.conftest import API, BASE_URL, Dockyard
from tests.inprocess.test_portal_security import sign_in
from tests.inprocess.test_tag_history import named_user

pytestmark = pytest.mark.anyio
MADRID = f"{API}/repositories/engineering/madrid"


def head(dockyard: Dockyard) -> int:
    return dockyard.services.registry.recorder.max_notification_id() or 0


async def _could_push(dockyard: Dockyard, users: list[str], at: str | None) -> set[str]:
    admin = dockyard.client()
    found = set()
    for user in users:
        params = {"repository": "engineering/madrid", **({"at": at} if at else {})}
        r = await admin.get(f"{API}/accounts/{user}/access", params=params)
        assert r.status_code == 200, r.text
        if "push" in r.json()["actions"]:
            found.add(user)
    return found


async def test_who_could_push_to_madrid_before_and_after_a_team_change(dockyard: Dockyard) -> None:
    for name, role in (("ahab", "none"), ("moby", "read-only"), ("orca", "read-write"), ("tina", "none"),
                       ("olive", "none")):
        await named_user(dockyard, name, role)
    await dockyard.org(name="engineering")
    admin = dockyard.client()
    r = await admin.put(f"{API}/accounts/engineering/teams/owners/members/olive")
    assert r.status_code == 200
    await dockyard.team("engineering", "frontend", members=["tina"])
    first = await dockyard.push(admin, "engineering/madrid", "v1")
    await dockyard.grant("engineering/madrid", "frontend", "read-write")
    before, moment = head(dockyard), datetime.now(UTC).isoformat().replace("+00:00", "Z")
    users = ["ahab", "moby", "orca", "tina", "olive"]
    # The team change: tina leaves, ahab joins; then the tag moves and the description changes.
    assert (await admin.delete(f"{API}/accounts/engineering/teams/frontend/members/tina")).status_code == 204
    assert (await admin.put(f"{API}/accounts/engineering/teams/frontend/members/ahab")).status_code == 200
    second = await dockyard.push(admin, "engineering/madrid", "v1")
    assert (await admin.patch(MADRID, json={"description": "moved on"})).status_code == 200

    assert await _could_push(dockyard, users, str(before)) == {"orca", "tina", "olive"}
    assert await _could_push(dockyard, users, moment) == {"orca", "tina", "olive"}
    assert await _could_push(dockyard, users, None) == {"orca", "ahab", "olive"}
    r = await admin.get(f"{API}/accounts/tina/access", params={"repository": "engineering/madrid", "at": moment})
    assert r.json()["accessLevel"] == "read-write" and r.json()["position"] == before

    # The repository, its tags and its team access as they were.
    assert (await admin.get(MADRID, params={"at": moment})).json()["description"] == ""
    assert (await admin.get(MADRID)).json()["description"] == "moved on"
    tags = (await admin.get(f"{MADRID}/tags", params={"at": moment})).json()["tags"]
    assert [(t["name"], t["digest"]) for t in tags] == [("v1", first)]
    assert (await admin.get(f"{MADRID}/tags")).json()["tags"][0]["digest"] == second
    grants = (await admin.get(f"{MADRID}/teamAccess", params={"at": str(before)})).json()["teamAccess"]
    assert grants == [{"team": "frontend", "accessLevel": "read-write"}]

    # Each caller sees the past they could read then: tina then, not ahab.
    async with (dockyard.client(("tina", "tina-password")) as as_tina,
                dockyard.client(("ahab", "ahab-password")) as as_ahab):
        assert (await as_tina.get(MADRID, params={"at": moment})).status_code == 200
        assert (await as_tina.get(MADRID)).status_code == 404
        assert (await as_ahab.get(MADRID, params={"at": moment})).status_code == 404
        listed = (await as_tina.get(f"{API}/repositories", params={"at": moment})).json()["repositories"]
        assert [r["fullName"] for r in listed] == ["engineering/madrid"]
        assert (await as_tina.get(f"{API}/repositories/engineering", params={"at": "1"})).json() == {
            "repositories": []}
        # Only admins, the account itself and the organisation's owners may ask about an account.
        r = await as_ahab.get(f"{API}/accounts/tina/access", params={"repository": "engineering/madrid"})
        assert r.status_code == 403
    # Before the repository existed it is missing; a malformed instant is a 400 problem.
    assert (await admin.get(MADRID, params={"at": "1"})).status_code == 404
    bad = await admin.get(MADRID, params={"at": "last tuesday"})
    assert bad.status_code == 400 and bad.headers["content-type"].startswith("application/problem+json")


async def test_the_portal_as_of_shows_each_tags_size_as_today(dockyard: Dockyard) -> None:
    """"As of" folds no manifest payloads; a tag's size then is its digest's, the same as today."""
    admin = dockyard.client()
    await dockyard.push(admin, "admin/sized", "v1")
    then = head(dockyard)
    await dockyard.push(admin, "admin/sized", "v2")
    page = httpx.AsyncClient(transport=httpx.ASGITransport(app=dockyard.app), base_url=BASE_URL)
    assert (await sign_in(page, "admin", ADMIN_PASSWORD)).status_code == 303
    rows = re.compile(r'<td><strong>([^<]*)</strong></td>.*?<td data-label="Size">([^<]*)</td>', re.S)
    today = dict(rows.findall((await page.get("/repositories/admin/sized")).text))
    past = (await page.get("/repositories/admin/sized", params={"at": str(then)})).text
    assert "As of" in past and set(today) == {"v1", "v2"} and "—" not in today.values(), today
    assert dict(rows.findall(past)) == {"v1": today["v1"]}
