"""A tag's history and a repository's activity (`/api/v0/repositories/{ns}/{repo}/tags/{tag}/history`,
`…/activity`): every digest, when, by whom, from where, deletes included."""

from __future__ import annotations

import pytest

from tests.inprocess.conftest import API, Dockyard

pytestmark = pytest.mark.anyio


async def named_user(dockyard: Dockyard, name: str, role: str = "none") -> tuple[str, str]:
    """A user with a lab name (the conftest's `user(name=…)` password is too short for names of
    four letters)."""
    password = f"{name}-password"
    r = await dockyard.client().post(f"{API}/accounts", json={"type": "user", "name": name, "password": password,
                                                             "role": role})
    assert r.status_code == 201, r.text
    return name, password


async def test_history_lists_each_push_move_and_delete_with_actor_and_address(dockyard: Dockyard) -> None:
    orca = await named_user(dockyard, "orca", "read-write")
    ahab = await named_user(dockyard, "ahab")
    await dockyard.org(name="engineering")
    admin = dockyard.client()
    first = await dockyard.push(admin, "engineering/barca", "lona")
    async with dockyard.client(orca) as as_orca:
        second = await dockyard.push(as_orca, "engineering/barca", "lona")
        assert (await as_orca.delete(f"{API}/repositories/engineering/barca/tags/lona")).status_code == 204
    third = await dockyard.push(admin, "engineering/barca", "lona")
    r = await admin.get(f"{API}/repositories/engineering/barca/tags/lona/history")
    assert r.status_code == 200, r.text
    steps = r.json()["steps"]
    assert [(s["action"], s["digest"], s["previous"], s["actor"]) for s in steps] == [
        ("pushed", first, None, "admin"), ("moved", second, first, "orca"), ("deleted", second, second, "orca"),
        ("pushed", third, None, "admin")]
    assert all(s["clientAddress"] == "127.0.0.1" and s["recordedAt"].endswith("Z") for s in steps)
    assert [s["position"] for s in steps] == sorted(s["position"] for s in steps)
    # Paged by the Link header.
    r = await admin.get(f"{API}/repositories/engineering/barca/tags/lona/history", params={"limit": 3})
    assert len(r.json()["steps"]) == 3
    link = r.headers["link"]
    rest = (await admin.get(link[1:link.index(">")])).json()["steps"]
    assert [s["digest"] for s in rest] == [third]
    # A tag that never existed, and a caller who cannot read the repository: 404 alike.
    assert (await admin.get(f"{API}/repositories/engineering/barca/tags/nope/history")).status_code == 404
    async with dockyard.client(ahab) as as_ahab:
        assert (await as_ahab.get(f"{API}/repositories/engineering/barca/tags/lona/history")).status_code == 404
        assert (await as_ahab.get(f"{API}/repositories/engineering/barca/activity")).status_code == 404


async def test_activity_is_the_repository_s_trail_newest_first(dockyard: Dockyard) -> None:
    await dockyard.org(name="engineering")
    admin = dockyard.client()
    await dockyard.push(admin, "engineering/madrid", "v1")
    r = await admin.patch(f"{API}/repositories/engineering/madrid", json={"description": "the capital"})
    assert r.status_code == 200
    events = (await admin.get(f"{API}/repositories/engineering/madrid/activity")).json()["events"]
    actions = [e["action"] for e in events]
    assert actions[0] == "repository.description_changed"
    assert "tag.moved" in actions and "manifest.pushed" in actions and actions[-1] == "repository.created"
    assert all(e["repository"] == "engineering/madrid" for e in events)
    walked: list[str] = []
    url: str | None = f"{API}/repositories/engineering/madrid/activity?limit=2"
    while url:
        page = await admin.get(url)
        walked += [e["action"] for e in page.json()["events"]]
        link = page.headers.get("link")
        url = link[1:link.index(">")] if link else None
    assert walked == actions
