"""`/api/v0/repositories`: create, read, change, soft-delete and search repositories.

Who may do what is `domain.access`, applied by `commands.management`: creating in a namespace
needs what pushing a new repository needs (own namespace, the organisation's owners, global
admins); reading needs read access,
and a repository the caller cannot read answers 404 exactly like a missing one; changing or
deleting needs `admin` on it. Listings hold only what the caller may read. Anonymous callers
see public repositories.

Repository names may have more components than `namespace/name` (a push can create them), so
`{repo}` is a path; the `tags` and `teamAccess` routes are matched before these, and `{repo:repository}`
never ends in one of those sub-resources (so `PATCH …/tags` is a 405, not a PATCH of repository `…/tags`).
"""

from __future__ import annotations

from typing import Any, cast

from fastapi import APIRouter, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool
from starlette.convertors import PathConvertor, register_url_convertor

from dockyard.api.v0.as_of import At, past, past_level, past_readable
from dockyard.api.v0.deps import PrincipalDep, ServicesDep, SignedIn
from dockyard.api.v0.paging import Cursor, Limit, decode_cursor, encode_cursor, link_next, page
from dockyard.api.v0.schemas import AccessLevel, NewRepository, Repository, RepositoryChange, RepositoryList
from dockyard.api.v0.search import ranked_search
from dockyard.api.v2.common import Services
from dockyard.domain.access import Principal
from dockyard.domain.errors import NotFound


class _RepositoryPath(PathConvertor):
    """A repository path under its namespace, not ending in a sub-resource of another router:
    `tags[/x]`, `teamAccess[/x]`, `tags/x/history`, `tags/x/restore`, `activity`, `restore`
    (so that an undeclared method there is a 405 of that route, not this route's 422)."""

    regex = (r"[^/]+(?:/(?!(?:(?:tags|teamAccess)(?:/[^/]*)?|tags/[^/]+/(?:history|restore)|activity|restore)$)"
             r"[^/]+)*")


register_url_convertor("repository", _RepositoryPath())

router = APIRouter(prefix="/repositories", tags=["repositories"])


def repository_view(row: dict[str, Any], level: str) -> Repository:
    namespace, _, name = row["name"].partition("/")
    return Repository(namespace=namespace, name=name, full_name=row["name"], visibility=row["visibility"],
                      description=row["description"], created_at=row["created_at"],
                      access_level=cast(AccessLevel, level))


def _readable(svc: Services, principal: Principal, full: str, needed: str = "read-only") -> Repository:
    level = svc.management.check_level(principal, full, needed)
    row = svc.registry_view.repository(full)
    if row is None:  # deleted between the two reads
        raise NotFound("no such repository", {"repository": full})
    return repository_view(row, level)


def _listing(svc: Services, principal: Principal, namespace: str | None, limit: int,
             cursor: str | None) -> tuple[RepositoryList, str | None]:
    """Up to `limit` repositories the caller may read (of `namespace` if given), in name order
    after the cursor's name; the next page's cursor when more follow. The access policy is in
    the query (`RegistryQueries.readable_repositories`, as the portal's listing and search):
    a caller who reads a few of many repositories never has the others fetched one by one."""
    facts = svc.read_side.search.caller_facts(principal)
    rows = svc.registry_view.readable_repositories(facts, limit + 1, decode_cursor(cursor), namespace)
    shown = [repository_view(row, row["access_level"]) for row in rows[:limit]]
    return RepositoryList(repositories=shown), (encode_cursor(shown[-1].full_name) if len(rows) > limit else None)


@router.get("", summary="The repositories the caller may read (paged, by name; ranked as /search with ?search=)")
async def search_repositories(
    request: Request, response: Response, principal: PrincipalDep, svc: ServicesDep,
    search: str | None = Query(None, description="Words of a repository's name, description or tags: "
                                                 "answered as `/api/v0/search?q=` (best match first)."),
    limit: Limit = 100, cursor: Cursor = None, at: At = None,
) -> RepositoryList:
    term = search.strip().lower() if search else None
    if at is not None:
        listing, next_cursor = await run_in_threadpool(_listing_then, svc, principal, at, None, term, limit, cursor)
        link_next(request, response, next_cursor)
        return listing
    if term:  # ranked, by the search projection (`api.v0.search`)
        hits, next_cursor = await run_in_threadpool(ranked_search, svc, principal, term, limit, cursor)
        link_next(request, response, next_cursor)
        return RepositoryList(repositories=list(hits))
    listing, next_cursor = await run_in_threadpool(_listing, svc, principal, None, limit, cursor)
    link_next(request, response, next_cursor)
    return listing


@router.post("/{namespace}", status_code=status.HTTP_201_CREATED,
             summary="Create a repository (own namespace, organisation owners, global admins)")
async def create_repository(namespace: str, body: NewRepository, principal: SignedIn,
                            svc: ServicesDep) -> Repository:
    def create() -> Repository:
        full = svc.management.create_repository(principal, namespace, body.name, body.visibility, body.description)
        return _readable(svc, principal, full)

    return await run_in_threadpool(create)


@router.get("/{namespace}", summary="The repositories of a namespace the caller may read (paged, by name)")
async def list_namespace(
    namespace: str, request: Request, response: Response, principal: PrincipalDep, svc: ServicesDep,
    limit: Limit = 100, cursor: Cursor = None, at: At = None,
) -> RepositoryList:
    if at is not None:
        listing, next_cursor = await run_in_threadpool(_listing_then, svc, principal, at, namespace, None, limit,
                                                       cursor)
    else:
        listing, next_cursor = await run_in_threadpool(_listing, svc, principal, namespace, limit, cursor)
    link_next(request, response, next_cursor)
    return listing


def _readable_then(svc: Services, principal: Principal, full: str, at: str) -> Repository:
    state = past(svc, at, full)
    level = past_readable(state, principal, full)
    row = state.registry_view.repository(full)
    assert row is not None  # past_readable found it live then
    return repository_view(row, level)


def _listing_then(svc: Services, principal: Principal, at: str, namespace: str | None, search: str | None,
                  limit: int, cursor: str | None) -> tuple[RepositoryList, str | None]:
    """The repositories (of `namespace`, whose name contains `search`) the caller could read
    at that instant, by name: the past is folded for the request, so this filters in Python."""
    state = past(svc, at)
    rows = state.registry_view.search_repositories(search, namespace, 1_000_000, None)
    readable = [(row, past_level(state, principal, row["name"])) for row in rows]
    shown, next_cursor = page([(r, lv) for r, lv in readable if lv != "none"], lambda x: x[0]["name"], limit, cursor)
    return RepositoryList(repositories=[repository_view(r, lv) for r, lv in shown]), next_cursor


@router.get("/{namespace}/{repo:repository}",
            summary="One repository (404 when the caller cannot read it; ?at= as of then)")
async def get_repository(namespace: str, repo: str, principal: PrincipalDep, svc: ServicesDep,
                         at: At = None) -> Repository:
    if at is not None:
        return await run_in_threadpool(_readable_then, svc, principal, f"{namespace}/{repo}", at)
    return await run_in_threadpool(_readable, svc, principal, f"{namespace}/{repo}")


@router.patch("/{namespace}/{repo:repository}", summary="Change visibility or description (admin on the repository)")
async def update_repository(namespace: str, repo: str, body: RepositoryChange, principal: SignedIn,
                            svc: ServicesDep) -> Repository:
    full = f"{namespace}/{repo}"

    def update() -> Repository:
        svc.management.update_repository(principal, full, visibility=body.visibility, description=body.description)
        return _readable(svc, principal, full)

    return await run_in_threadpool(update)


@router.delete("/{namespace}/{repo:repository}", status_code=status.HTTP_204_NO_CONTENT,
               summary="Soft-delete a repository (admin on it); its history stays in the log")
async def delete_repository(namespace: str, repo: str, principal: SignedIn, svc: ServicesDep) -> None:
    full = f"{namespace}/{repo}"

    await run_in_threadpool(svc.management.delete_repository, principal, full)
