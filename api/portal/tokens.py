"""`Access tokens`: a user's own tokens — create (the secret shown once, with a copy button),
list, revoke. The commands are the API's (`AccessTokens`); the portal session was opened with
a password, which is what creating a token requires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from dockyard.api.portal.web import CurrentViewer, Form, PortalRoute, Viewer, redirect, render, services, status_of
from dockyard.domain.errors import DomainError, InvalidRequest, Unauthorized

router = APIRouter(route_class=PortalRoute, include_in_schema=False)
LEVELS = [("read-only", "Read-only"), ("read-write", "Read-write"), ("admin", "Admin")]


def _owner(current: Viewer) -> str:
    if current.session_id is None or current.principal.name is None:
        raise Unauthorized("sign in to manage access tokens")
    return current.principal.name


async def _render(request: Request, current: Viewer, status_code: int = 200, **extra: object) -> Response:
    rows = await run_in_threadpool(services(request).identity_view.access_tokens, _owner(current))
    context = {"tokens": rows, "levels": LEVELS, "created": None, "error": None, "values": {}}
    return render(request, "tokens.html", status_code, section="tokens", **{**context, **extra})


@router.get("/tokens")
async def tokens_page(request: Request, current: CurrentViewer) -> Response:
    return await _render(request, current)


@router.post("/tokens")
async def create_token(request: Request, current: CurrentViewer, form: Form) -> Response:
    owner = _owner(current)
    values = {k: form.get(k, "").strip() for k in ("name", "level", "days", "repositories")}
    try:
        expires = None
        if values["days"]:
            if not values["days"].isdigit() or not 1 <= int(values["days"]) <= 3650:
                raise InvalidRequest("Expiry must be a number of days from 1 to 3650, or empty.")
            expires = datetime.now(UTC) + timedelta(days=int(values["days"]))
        repositories = [r.strip() for r in values["repositories"].split(",") if r.strip()]
        issued = await run_in_threadpool(services(request).tokens.create, owner, values["name"],
                                         values["level"] or "read-only", expires, repositories)
    except DomainError as exc:
        return await _render(request, current, status_of(exc), error=exc.message, values=values)
    return await _render(request, current, 201, created=issued.secret)


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(request: Request, token_id: str, current: CurrentViewer, form: Form) -> Response:
    await run_in_threadpool(services(request).tokens.revoke, _owner(current), token_id)
    return redirect("/tokens")
