"""`/api/v0/search`: repositories ranked for a search term, only those the caller may read.

The query is `projections.search_queries` (the followed `search` projection joined with the
repositories and grants the access policy reads, filtered inside the query). The answer waits
for the projection to fold the log up to where it stood when the request came in (bounded), so
a repository pushed before the search is found by it. Paged by an opaque cursor and a
`Link: rel="next"` header (`api.v0.paging`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from dockyard.api.v0.deps import PrincipalDep, ServicesDep
from dockyard.api.v0.paging import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor, link_next
from dockyard.api.v0.schemas import SearchHit, SearchResults
from dockyard.api.v2.common import Services
from dockyard.domain.access import Principal
from dockyard.projections.search_queries import SearchKey

router = APIRouter(tags=["search"])
FRESHNESS_WAIT = 2.0  # seconds a search waits for the projection to reach the log's head


def ranked_search(svc: Services, principal: Principal, term: str, limit: int, cursor: str | None,
                  namespace: str | None = None) -> tuple[list[SearchHit], str | None]:
    """One page of search hits and the next page's cursor (None on the last page). Blocking."""
    text = decode_cursor(cursor)
    try:
        after = SearchKey.decode(text) if text is not None else None
    except ValueError:
        raise HTTPException(400, "invalid cursor: pass the one the previous page's Link header names") from None
    read_side = svc.read_side
    read_side.wait("search", read_side.head(), FRESHNESS_WAIT)
    search = read_side.search
    rows = search.search(search.caller_facts(principal), term, limit + 1, after, namespace)
    hits = [hit(row) for row in rows[:limit]]
    more = len(rows) > limit
    last = rows[limit - 1] if more else None
    return hits, (encode_cursor(SearchKey(last["rank"], last["pushed_at"], last["name"]).encode()) if last else None)


def hit(row: dict[str, object]) -> SearchHit:
    full = str(row["name"])
    namespace, _, name = full.partition("/")
    return SearchHit(namespace=namespace, name=name, full_name=full, visibility=row["visibility"],
                     description=str(row["description"]), created_at=str(row["created_at"]),
                     access_level=row["access_level"], tags=str(row["tags"]).split(),
                     pushed_at=str(row["pushed_at"]))


@router.get("/search", summary="Search the repositories the caller may read, best match first (paged)")
async def search_repositories(
    request: Request, response: Response, principal: PrincipalDep, svc: ServicesDep,
    q: Annotated[str, Query(max_length=256, description="Words of a repository's name, description or tags.")] = "",
    n: Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"At most this many (1-{MAX_LIMIT}).")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(description="From the previous page's Link header (opaque).")] = None,
) -> SearchResults:
    hits, next_cursor = await run_in_threadpool(ranked_search, svc, principal, q, n, cursor)
    link_next(request, response, next_cursor)
    return SearchResults(repositories=hits)
