"""`/api/v0/repositories/{namespace}/{repo}/teamAccess`: what each team of the repository's
organisation may do to it (DTR's "Add repository" to a team, with a permission).

Granting and revoking need `admin` on the repository; reading the grants needs read access.
The team must be one of the organisation that owns the repository (404 otherwise).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from starlette.concurrency import run_in_threadpool

from dockyard.api.v0.as_of import At, readable_views
from dockyard.api.v0.deps import PrincipalDep, ServicesDep, SignedIn
from dockyard.api.v0.paging import Cursor, Limit, link_next, page
from dockyard.api.v0.schemas import TeamAccess, TeamAccessChange, TeamAccessList

router = APIRouter(prefix="/repositories/{namespace}/{repo:path}/teamAccess", tags=["team access"])


@router.get("", summary="The teams with access to the repository (read access; paged, by team; ?at= as of then)")
async def list_team_access(namespace: str, repo: str, request: Request, response: Response, principal: PrincipalDep,
                           svc: ServicesDep, limit: Limit = 100, cursor: Cursor = None,
                           at: At = None) -> TeamAccessList:
    full = f"{namespace}/{repo}"

    def grants() -> TeamAccessList:
        identity = readable_views(svc, principal, full, at).identity_view
        rows, next_cursor = page(identity.team_access(full), lambda r: r["team"], limit, cursor)
        link_next(request, response, next_cursor)
        return TeamAccessList(repository=full,
                              team_access=[TeamAccess(team=r["team"], access_level=r["level"]) for r in rows])

    return await run_in_threadpool(grants)


@router.put("/{team}", summary="Grant a team of the organisation a level on the repository (admin on it)")
async def grant_team_access(namespace: str, repo: str, team: str, body: TeamAccessChange, principal: SignedIn,
                            svc: ServicesDep) -> TeamAccess:
    full = f"{namespace}/{repo}"

    def grant() -> TeamAccess:
        svc.management.grant_team_access(principal, full, team, body.access_level)
        return TeamAccess(team=team, access_level=body.access_level)

    return await run_in_threadpool(grant)


@router.delete("/{team}", status_code=status.HTTP_204_NO_CONTENT,
               summary="Revoke a team's access to the repository (admin on it)")
async def revoke_team_access(namespace: str, repo: str, team: str, principal: SignedIn, svc: ServicesDep) -> None:
    full = f"{namespace}/{repo}"

    def revoke() -> None:
        svc.management.revoke_team_access(principal, full, team)

    await run_in_threadpool(revoke)
