"""`/api/v0/accounts/{org}/teams`: an organisation's teams and their members.

Every organisation has an `owners` team, made with it; it cannot be deleted and its last member
cannot be removed (409). Teams are managed by the organisation's owners and global admins, and
read by any signed-in user.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from starlette.concurrency import run_in_threadpool

from dockyard.api.v0.deps import ServicesDep, SignedIn
from dockyard.api.v0.paging import Cursor, Limit, link_next, page
from dockyard.api.v0.schemas import MemberList, NewTeam, Team, TeamList, TeamSummary
from dockyard.api.v2.common import Services
from dockyard.domain.errors import NotFound

router = APIRouter(prefix="/accounts/{org}/teams", tags=["teams"])


def _team(svc: Services, org: str, team: str) -> Team:
    svc.management.check_organization(org)
    row = svc.identity_view.team(org, team)
    if row is None:
        raise NotFound("no such team", {"organization": org, "team": team})
    return Team(organization=org, name=team, description=row["description"],
                members=svc.identity_view.members(org, team))


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a team (owners, global admins)")
async def create_team(org: str, body: NewTeam, principal: SignedIn, svc: ServicesDep) -> Team:
    def create() -> Team:
        svc.management.create_team(principal, org, body.name, body.description)
        return _team(svc, org, body.name)

    return await run_in_threadpool(create)


@router.get("", summary="List an organisation's teams (paged, by name)")
async def list_teams(org: str, request: Request, response: Response, principal: SignedIn, svc: ServicesDep,
                     limit: Limit = 100, cursor: Cursor = None) -> TeamList:
    def teams() -> TeamList:
        svc.management.check_organization(org)
        rows, next_cursor = page(svc.identity_view.teams(org), lambda r: r["name"], limit, cursor)
        link_next(request, response, next_cursor)
        return TeamList(teams=[TeamSummary(organization=org, name=r["name"], description=r["description"])
                               for r in rows])

    return await run_in_threadpool(teams)


@router.get("/{team}/members", summary="A team's members (paged, by name)")
async def list_members(org: str, team: str, request: Request, response: Response, principal: SignedIn,
                       svc: ServicesDep, limit: Limit = 100, cursor: Cursor = None) -> MemberList:
    def members() -> MemberList:
        names, next_cursor = page(_team(svc, org, team).members, lambda name: name, limit, cursor)
        link_next(request, response, next_cursor)
        return MemberList(members=names)

    return await run_in_threadpool(members)


@router.get("/{team}", summary="A team with its members")
async def get_team(org: str, team: str, principal: SignedIn, svc: ServicesDep) -> Team:
    return await run_in_threadpool(_team, svc, org, team)


@router.delete("/{team}", status_code=status.HTTP_204_NO_CONTENT,
               summary="Delete a team and its repository grants (not `owners`)")
async def delete_team(org: str, team: str, principal: SignedIn, svc: ServicesDep) -> None:
    await run_in_threadpool(svc.management.delete_team, principal, org, team)


@router.put("/{team}/members/{user}", summary="Add a user to a team (adding a member twice changes nothing)")
async def add_member(org: str, team: str, user: str, principal: SignedIn, svc: ServicesDep) -> Team:
    def add() -> Team:
        svc.management.add_member(principal, org, team, user)
        return _team(svc, org, team)

    return await run_in_threadpool(add)


@router.delete("/{team}/members/{user}", status_code=status.HTTP_204_NO_CONTENT,
               summary="Remove a user from a team (not the last owner)")
async def remove_member(org: str, team: str, user: str, principal: SignedIn, svc: ServicesDep) -> None:
    await run_in_threadpool(svc.management.remove_member, principal, org, team, user)
