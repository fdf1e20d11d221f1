"""Repository search (`GET /api/v0/search`, `/api/v0/repositories?search=`): ranked, only what
the caller may read, paged by the Link header."""

from __future__ import annotations

import pytest

from tests.inprocess.conftest import API, Dockyard
from tests.inprocess.test_tag_history import named_user

pytestmark = pytest.mark.anyio


async def _names(client, q: str, **params) -> list[str]:  # type: ignore[no-untyped-def]
    r = await client.get(f"{API}/search", params={"q": q, **params})
    assert r.status_code == 200, r.text
    return [hit["fullName"] for hit in r.json()["repositories"]]


async def test_ranking_exact_then_prefix_then_word_then_substring_recent_first(dockyard: Dockyard) -> None:
    admin = dockyard.client()
    for name, description in [("eng/xbarcax", ""), ("eng/barcanova", ""), ("eng/tools", "the barca build"),
                              ("eng/barca", ""), ("ops/barca-old", ""), ("ops/barca-new", "")]:
        ns, repo = name.split("/")
        if (await admin.get(f"{API}/accounts/{ns}")).status_code == 404:
            await dockyard.org(name=ns)
        r = await admin.post(f"{API}/repositories/{ns}", json={"name": repo, "description": description})
        assert r.status_code == 201, r.text
    # Pushed later, so first among the prefix matches.
    await dockyard.push(admin, "ops/barca-old", "v1")
    await dockyard.push(admin, "ops/barca-new", "v1")
    names = await _names(admin, "Barca")
    assert names[0] == "eng/barca", names  # exact
    assert names[1:4] == ["ops/barca-new", "ops/barca-old", "eng/barcanova"], names  # prefix, recently pushed first
    assert names[4:] == ["eng/tools", "eng/xbarcax"]  # a whole word of the description, then a substring
    # Tag names are searched too.
    await dockyard.push(admin, "eng/tools", "release-candidate")
    assert await _names(admin, "candidate") == ["eng/tools"]
    assert await _names(admin, "zzz-nothing") == []


async def test_a_repository_the_caller_cannot_read_never_shows_up(dockyard: Dockyard) -> None:
    ahab = await named_user(dockyard, "ahab")
    tina = await named_user(dockyard, "tina")
    await dockyard.org(name="engineering")
    team = await dockyard.team("engineering", "frontend", members=["tina"])
    admin = dockyard.client()
    await dockyard.push(admin, "engineering/barca", "lona")
    await dockyard.push(admin, "engineering/madrid", "v1")
    await dockyard.grant("engineering/madrid", team, "read-only")
    r = await admin.post(f"{API}/repositories/engineering", json={"name": "public-barca", "visibility": "public"})
    assert r.status_code == 201
    async with dockyard.client(ahab) as as_ahab, dockyard.client(tina) as as_tina:
        assert await _names(as_ahab, "barca") == ["engineering/public-barca"]
        assert await _names(as_ahab, "") == ["engineering/public-barca"]  # nothing to count either
        listed = (await as_ahab.get(f"{API}/repositories", params={"search": "barca"})).json()["repositories"]
        assert [r["fullName"] for r in listed] == ["engineering/public-barca"]
        hits = (await as_tina.get(f"{API}/search", params={"q": "madrid"})).json()["repositories"]
        assert [(h["fullName"], h["accessLevel"], h["tags"]) for h in hits] == [
            ("engineering/madrid", "read-only", ["v1"])]
    assert await _names(admin, "barca") == ["engineering/barca", "engineering/public-barca"]
    # A deleted repository leaves the results at once.
    assert (await admin.delete(f"{API}/repositories/engineering/barca")).status_code == 204
    assert await _names(admin, "barca") == ["engineering/public-barca"]


async def test_pages_follow_the_link_header_without_gaps_or_repeats(dockyard: Dockyard) -> None:
    admin = dockyard.client()
    await dockyard.org(name="paged")
    for i in range(7):
        r = await admin.post(f"{API}/repositories/paged", json={"name": f"app{i}"})
        assert r.status_code == 201
    for i in (3, 5):
        await dockyard.push(admin, f"paged/app{i}", "v1")
    seen: list[str] = []
    url: str | None = f"{API}/search?q=app&n=3"
    pages = 0
    while url:
        r = await admin.get(url)
        assert r.status_code == 200, r.text
        seen += [h["fullName"] for h in r.json()["repositories"]]
        link = r.headers.get("link")
        url = link[1:link.index(">")] if link else None
        pages += 1
    assert pages == 3
    assert seen[:2] == ["paged/app5", "paged/app3"]
    assert sorted(seen) == [f"paged/app{i}" for i in range(7)] and len(set(seen)) == 7
    assert (await admin.get(f"{API}/search", params={"q": "app", "cursor": "!!"})).status_code == 400
