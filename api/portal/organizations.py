"""`Organizations`: the list, `New organization`, an organization's `Repositories` and `Teams`
tabs, `New team` with `Add members`, and a team's page with its members and `Add repository`.

The checks are the API's: any signed-in user may read organisations and teams and create an
organisation (becoming its first owner); teams are managed by the organisation's owners and
global admins; granting a team access needs admin on the repository.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from dockyard.api.portal.repositories import readable_page
from dockyard.api.portal.web import (
    CurrentViewer,
    Form,
    PortalRoute,
    Viewer,
    redirect,
    render,
    services,
    status_of,
)
from dockyard.api.v2.common import Services
from dockyard.domain.errors import DomainError, InvalidRequest, NotFound

router = APIRouter(route_class=PortalRoute, include_in_schema=False)

PERMISSIONS = [("read-only", "Read-only"), ("read-write", "Read-write"), ("admin", "Admin")]
VISIBILITIES = [("private", "Private"), ("public", "Public")]


PAGE = 60


@router.get("/organizations")
async def list_organizations(request: Request, current: CurrentViewer, after: str | None = None) -> Response:
    rows = await run_in_threadpool(services(request).identity_view.accounts_page, "organization", after,
                                   PAGE + 1)
    return render(request, "organizations.html", section="organizations", organizations=rows[:PAGE],
                  next_after=rows[PAGE - 1]["name"] if len(rows) > PAGE else None)


@router.get("/organizations/new")
async def new_organization_page(request: Request, current: CurrentViewer) -> Response:
    return render(request, "organization_new.html", section="organizations", value="", error=None)


@router.post("/organizations/new")
async def create_organization(request: Request, current: CurrentViewer, form: Form) -> Response:
    name = form.get("name", "").strip()
    svc = services(request)
    try:
        if current.principal.is_anonymous:
            raise InvalidRequest("Sign in to create an organization.")
        await run_in_threadpool(svc.management.create_organization, current.principal, name)
    except DomainError as exc:
        return render(request, "organization_new.html", 400, section="organizations", value=name,
                      error=exc.message)
    return redirect(f"/organizations/{name}")


def organization_view(svc: Services, viewer: Viewer, org: str) -> dict[str, Any]:
    svc.management.check_organization(org)
    manager = True
    try:
        svc.management.check_may_manage_teams(viewer.principal, org)
    except DomainError:
        manager = False
    return {"org": org, "manager": manager,
            "may_create": svc.management.may_create_repository(viewer.principal, f"{org}/x")}


@router.get("/organizations/{org}")
async def organization_page(request: Request, org: str, current: CurrentViewer, tab: str = "repositories",
                            after: str | None = None) -> Response:
    svc = services(request)
    view = await run_in_threadpool(organization_view, svc, current, org)
    if tab == "teams":
        teams = await run_in_threadpool(svc.identity_view.teams, org)
        return render(request, "organization.html", section="organizations", tab="Teams", teams=teams, **view)
    rows, more = await run_in_threadpool(readable_page, svc, current, None, after, org)
    return render(request, "organization.html", section="organizations", tab="Repositories", repositories=rows,
                  next_after=more, **view)


def _new_team_context(svc: Services, org: str) -> dict[str, Any]:
    return {"users": [r["name"] for r in svc.identity_view.accounts("user") if r["active"]]}


@router.get("/organizations/{org}/teams/new")
async def new_team_page(request: Request, org: str, current: CurrentViewer) -> Response:
    svc = services(request)
    await run_in_threadpool(svc.management.check_may_manage_teams, current.principal, org)
    context = await run_in_threadpool(_new_team_context, svc, org)
    return render(request, "team_new.html", section="organizations", org=org, values={}, chosen=[], error=None,
                  **context)


@router.post("/organizations/{org}/teams/new")
async def create_team(request: Request, org: str, current: CurrentViewer, form: Form) -> Response:
    svc = services(request)
    raw = await request.form()
    members = [str(m) for m in raw.getlist("members")]
    name, description = form.get("name", "").strip(), form.get("description", "").strip()

    def create() -> None:
        svc.management.create_team(current.principal, org, name, description)
        for member in members:
            svc.management.add_member(current.principal, org, name, member)

    await run_in_threadpool(svc.management.check_organization, org)  # a missing organisation is a 404 page
    try:
        await run_in_threadpool(create)
    except DomainError as exc:
        context = await run_in_threadpool(_new_team_context, svc, org)
        return render(request, "team_new.html", status_of(exc), section="organizations", org=org,
                      values={"name": name, "description": description}, chosen=members, error=exc.message,
                      **context)
    return redirect(f"/organizations/{org}/teams/{name}")


def team_view(svc: Services, viewer: Viewer, org: str, team: str) -> dict[str, Any]:
    svc.management.check_organization(org)
    row = svc.identity_view.team(org, team)
    if row is None:
        raise NotFound("no such team", {"organization": org, "team": team})
    view = organization_view(svc, viewer, org)
    members = svc.identity_view.members(org, team)
    users = [r["name"] for r in svc.identity_view.accounts("user") if r["active"] and r["name"] not in members]
    repositories = svc.registry_view.search_repositories(None, org, 1000, None)
    return {**view, "team": row, "members": members, "users": users,
            "grants": svc.identity_view.team_repositories(org, team),
            "org_repositories": [r["name"].split("/", 1)[1] for r in repositories]}


@router.get("/organizations/{org}/teams/{team}")
async def team_page(request: Request, org: str, team: str, current: CurrentViewer) -> Response:
    view = await run_in_threadpool(team_view, services(request), current, org, team)
    return render(request, "team.html", section="organizations", error=None, values={}, **view)


@router.post("/organizations/{org}/teams/{team}/members")
async def add_member(request: Request, org: str, team: str, current: CurrentViewer, form: Form) -> Response:
    svc = services(request)
    raw = await request.form()
    members = [str(m) for m in raw.getlist("members")] or ([form["member"]] if form.get("member") else [])

    def add() -> None:
        for member in members:
            svc.management.add_member(current.principal, org, team, member)

    await run_in_threadpool(add)
    return redirect(f"/organizations/{org}/teams/{team}")


@router.post("/organizations/{org}/teams/{team}/members/{user}/remove")
async def remove_member(request: Request, org: str, team: str, user: str, current: CurrentViewer,
                        form: Form) -> Response:
    svc = services(request)

    def remove() -> None:
        svc.management.remove_member(current.principal, org, team, user)

    try:
        await run_in_threadpool(remove)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        view = await run_in_threadpool(team_view, svc, current, org, team)
        return render(request, "team.html", status_of(exc), section="organizations", error=exc.message, values={},
                      **view)
    return redirect(f"/organizations/{org}/teams/{team}")


@router.post("/organizations/{org}/teams/{team}/repositories")
async def add_repository(request: Request, org: str, team: str, current: CurrentViewer, form: Form) -> Response:
    """`Add repository`: a new repository of the organisation (made with the chosen visibility)
    or an existing one, granted to the team with the chosen permission."""
    svc = services(request)
    values = {k: form.get(k, "").strip() for k in ("repository", "permission", "visibility")}
    full = f"{org}/{values['repository']}"

    def grant() -> None:
        svc.management.check_may_manage_teams(current.principal, org)
        if not values["repository"]:
            raise InvalidRequest("Enter a repository name.")
        if svc.registry_view.repository(full) is None:
            svc.management.create_repository(current.principal, org, values["repository"],
                                             values["visibility"] or "private")
        svc.management.grant_team_access(current.principal, full, team, values["permission"] or "read-only")

    await run_in_threadpool(team_view, svc, current, org, team)  # a missing organisation or team is a 404 page
    try:
        await run_in_threadpool(grant)
    except DomainError as exc:
        view = await run_in_threadpool(team_view, svc, current, org, team)
        return render(request, "team.html", status_of(exc), section="organizations", error=exc.message,
                      values=values, **view)
    return redirect(f"/organizations/{org}/teams/{team}")


@router.post("/organizations/{org}/teams/{team}/repositories/{repo:path}/remove")
async def remove_repository(request: Request, org: str, team: str, repo: str, current: CurrentViewer,
                            form: Form) -> Response:
    svc, full = services(request), f"{org}/{repo}"

    def revoke() -> None:
        svc.management.revoke_team_access(current.principal, full, team)

    await run_in_threadpool(revoke)
    return redirect(f"/organizations/{org}/teams/{team}")
