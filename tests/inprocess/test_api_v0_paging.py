"""`/api/v0` listings page as `/v2/` does: `?limit=` (bounded), an opaque `?cursor=`, and the
next page in a `Link: <…>; rel="next"` header, absent on the last page (issue 7, item 10).

Each listing is walked page by page through its `Link` headers alone; the pages together are
the whole listing, in order, with nothing twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.inprocess.conftest import API, Dockyard

pytestmark = pytest.mark.anyio

Items = Callable[[Any], list[Any]]


async def walk(client: httpx.AsyncClient, first: str, items: Items, limit: int) -> list[list[Any]]:
    """Every page of a listing, following `Link: <…>; rel="next"` from `first`."""
    pages: list[list[Any]] = []
    url: str | None = first
    while url is not None:
        r = await client.get(url)
        assert r.status_code == 200, r.text
        page = items(r.json())
        pages.append(page)
        link = r.headers.get("link")
        if link is None:
            url = None
            continue
        found = re.fullmatch(r'<(/api/v0/[^>]+)>; rel="next"', link)
        assert found, link
        url = found.group(1)
        assert len(page) == limit, (url, page)  # only a full page names a next one
        assert f"limit={limit}" in url
    return pages


async def assert_pages(client: httpx.AsyncClient, path: str, items: Items, expected: list[Any],
                       limit: int = 2) -> None:
    sep = "&" if "?" in path else "?"
    pages = await walk(client, f"{path}{sep}limit={limit}", items, limit)
    assert [item for page in pages for item in page] == expected
    assert len(pages) == -(-len(expected) // limit)  # a full last page names no next (empty) one
    whole = await client.get(f"{path}{sep}limit=1000")
    assert whole.status_code == 200 and "link" not in whole.headers
    assert items(whole.json()) == expected


def names(key: str, field: str = "name") -> Items:
    return lambda body: [item[field] if isinstance(item, dict) else item for item in body[key]]


async def test_accounts_page_by_name_and_keep_the_filter(dockyard: Dockyard, client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await dockyard.user()
    await dockyard.org()
    everyone = names("accounts")((await client.get(f"{API}/accounts?limit=1000")).json())
    assert everyone == sorted(everyone) and len(everyone) >= 5
    await assert_pages(client, f"{API}/accounts", names("accounts"), everyone)
    users = names("accounts")((await client.get(f"{API}/accounts?type=user&limit=1000")).json())
    await assert_pages(client, f"{API}/accounts?type=user", names("accounts"), users)  # `type` stays in Link


async def test_teams_and_members_page(dockyard: Dockyard, client: httpx.AsyncClient) -> None:
    org = await dockyard.org()
    members = sorted([(await dockyard.user())[0] for _ in range(3)])
    made = [await dockyard.team(org, members=members) for _ in range(3)]
    await assert_pages(client, f"{API}/accounts/{org}/teams", names("teams"), sorted([*made, "owners"]))
    await assert_pages(client, f"{API}/accounts/{org}/teams/{made[0]}/members", names("members"), members)
    assert (await client.get(f"{API}/accounts/{org}/teams/no-such-team/members")).status_code == 404


async def test_repositories_tags_and_team_access_page(dockyard: Dockyard, client: httpx.AsyncClient) -> None:
    org = await dockyard.org()
    repositories = sorted(f"{org}/app{i}" for i in range(5))
    for repository in repositories:
        r = await client.post(f"{API}/repositories/{org}", json={"name": repository.split("/")[1],
                                                                 "visibility": "private"})
        assert r.status_code == 201, r.text
    await assert_pages(client, f"{API}/repositories/{org}", names("repositories", "fullName"), repositories)
    await assert_pages(client, f"{API}/repositories?search={org}", names("repositories", "fullName"), repositories)

    tags = sorted(["v1", "v2", "latest", "edge"])
    for tag in tags:
        await dockyard.push(client, repositories[0], tag)
    namespace, repo = repositories[0].split("/")
    await assert_pages(client, f"{API}/repositories/{namespace}/{repo}/tags", names("tags"), tags, limit=3)

    teams = sorted([await dockyard.team(org) for _ in range(3)])
    for team in teams:
        await dockyard.grant(repositories[0], team, "read-only")
    await assert_pages(client, f"{API}/repositories/{namespace}/{repo}/teamAccess", names("teamAccess", "team"),
                       teams)


async def test_tokens_page_oldest_first(dockyard: Dockyard) -> None:
    user, password = await dockyard.user(role="read-write")
    as_user = dockyard.client((user, password))
    made = []
    for i in range(3):
        r = await as_user.post(f"{API}/accounts/{user}/tokens", json={"name": f"ci-{i}"})
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
        dockyard.clock.advance(1)
    listed = names("tokens", "id")((await as_user.get(f"{API}/accounts/{user}/tokens?limit=1000")).json())
    assert sorted(listed) == sorted(made)
    await assert_pages(as_user, f"{API}/accounts/{user}/tokens", names("tokens", "id"), listed)


async def test_limit_is_bounded_and_a_foreign_cursor_is_a_problem(dockyard: Dockyard,
                                                                  client: httpx.AsyncClient) -> None:
    org = await dockyard.org()
    for path in (f"{API}/accounts", f"{API}/accounts/{org}/teams", f"{API}/repositories"):
        for limit in ("0", "1001", "many"):
            r = await client.get(path, params={"limit": limit})
            assert r.status_code == 422, (path, limit, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
        r = await client.get(path, params={"cursor": "%%%not-ours"})
        assert r.status_code == 400, (path, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "cursor" in r.json()["detail"]


async def test_a_cursor_holds_its_place_while_the_listing_changes(dockyard: Dockyard,
                                                                  client: httpx.AsyncClient) -> None:
    org = await dockyard.org()
    for name in ("b", "d", "f"):
        await dockyard.team(org, name=name)
    first = await client.get(f"{API}/accounts/{org}/teams?limit=2")
    assert names("teams")(first.json()) == ["b", "d"]
    await dockyard.team(org, name="a")  # lands before the cursor: not seen on the next page
    await dockyard.team(org, name="e")  # lands after it: seen
    nxt = re.fullmatch(r'<([^>]+)>; rel="next"', first.headers["link"])
    assert nxt
    second = await client.get(nxt.group(1))
    assert names("teams")(second.json()) == ["e", "f"]
    third = await client.get(re.fullmatch(r'<([^>]+)>; rel="next"', second.headers["link"]).group(1))  # type: ignore[union-attr]
    assert names("teams")(third.json()) == ["owners"] and "link" not in third.headers
