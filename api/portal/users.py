"""`Users` (global admins): the list, `Add user` with `Username`, `Password` and `Global role`,
changing a role, deactivating and activating. The same page is the user half of
`Settings > Auth`, as in DTR, where the lab adds its users.

The commands and rules are the API's: the password policy and hashing, the last-admin rule.
A deactivated user's portal sessions end at their next request (`web._current`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from dockyard.api.portal.web import AdminViewer, Form, PortalRoute, Viewer, redirect, render, services, status_of
from dockyard.api.v2.common import Services
from dockyard.domain.errors import DomainError, NotFound

router = APIRouter(route_class=PortalRoute, include_in_schema=False)

GLOBAL_ROLES = [("admin", "Admin - all repositories"), ("read-write", "Read-write - all repositories"),
                ("read-only", "Read-only - all repositories"), ("none", "None")]


PAGE = 50


def users_context(svc: Services, after: str | None = None) -> dict[str, Any]:
    """One page of users (name order after `after`), the next page's cursor, the role choices."""
    rows = svc.identity_view.accounts_page("user", after, PAGE + 1)
    return {"users": rows[:PAGE], "next_after": rows[PAGE - 1]["name"] if len(rows) > PAGE else None,
            "roles": GLOBAL_ROLES}


def render_users(request: Request, template: str, status_code: int = 200, **extra: Any) -> Response:
    context = users_context(services(request), request.query_params.get("after"))
    defaults: dict[str, Any] = {"values": {"role": "none"}, "errors": {}, "error": None, "open_add": False,
                                "back_to": "/users"}
    return render(request, template, status_code, section="users", **{**defaults, **context, **extra})


@router.get("/users")
async def users_page(request: Request, current: AdminViewer) -> Response:
    return await run_in_threadpool(render_users, request, "users.html")


@router.post("/users/new")
async def add_user(request: Request, current: AdminViewer, form: Form) -> Response:
    values = {"username": form.get("username", "").strip(), "role": form.get("role", "none")}
    back = "/settings/auth" if form.get("back") == "/settings/auth" else "/users"
    try:
        await run_in_threadpool(services(request).management.create_user, current.principal, values["username"],
                                form.get("password", ""), values["role"])
    except DomainError as exc:
        failed = {"values": values, "open_add": True,
                  "errors": {"password" if "password" in exc.message.lower() else "username": exc.message}}
        if back == "/settings/auth":
            from dockyard.api.portal.settings import render_auth  # settings imports this module

            return await render_auth(request, status_of(exc), **failed)
        status = status_of(exc)
        return await run_in_threadpool(lambda: render_users(request, "users.html", status, **failed))
    return redirect(back)


@router.post("/users/{name}/role")
async def set_role(request: Request, name: str, current: AdminViewer, form: Form) -> Response:
    try:
        await run_in_threadpool(partial(services(request).management.update_user, current.principal, name,
                                        role=form.get("role", "")))
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        status, message = status_of(exc), exc.message
        return await run_in_threadpool(lambda: render_users(request, "users.html", status, error=message))
    return redirect("/users")


@router.post("/users/{name}/deactivate")
async def deactivate(request: Request, name: str, current: AdminViewer, form: Form) -> Response:
    return await _set_active(request, current, name, False)


@router.post("/users/{name}/activate")
async def activate(request: Request, name: str, current: AdminViewer, form: Form) -> Response:
    return await _set_active(request, current, name, True)


async def _set_active(request: Request, current: Viewer, name: str, active: bool) -> Response:
    """The last active admin cannot be deactivated (409, shown on the page)."""
    svc = services(request)
    try:
        await run_in_threadpool(partial(svc.management.update_user, current.principal, name, active=active))
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        status, message = status_of(exc), exc.message
        return await run_in_threadpool(lambda: render_users(request, "users.html", status, error=message))
    if not active:
        await run_in_threadpool(svc.portal_sessions.end_all, name)
    return redirect("/users")
