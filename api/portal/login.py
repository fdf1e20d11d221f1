"""Signing in and out of the portal.

The password goes through `Accounts.authenticate`, the one door for credentials (managed,
LDAP, the initial admin, login throttling). A successful sign-in starts a new server-side
session with a fresh id (the old one, if any, ends: no session fixation); the cookie is
HttpOnly, SameSite=Lax, and Secure when the page came over HTTPS. The sign-in form is
protected by a double-submit CSRF token (there is no session yet to hold one).
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from dockyard.api.portal.web import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    CurrentViewer,
    Form,
    PortalRoute,
    redirect,
    render,
    safe_next,
    services,
)
from dockyard.domain.errors import TooManyRequests

router = APIRouter(route_class=PortalRoute, include_in_schema=False)


def _login_form(request: Request, next_path: str, error: str | None = None, username: str = "",
                status_code: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", status_code, csrf_login=token, next=next_path, error=error,
                      username=username)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/login",
                        secure=request.url.scheme == "https")
    return response


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    return _login_form(request, safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    username, password = str(form.get("username") or "").strip(), str(form.get("password") or "")
    next_path = safe_next(str(form.get("next") or ""))
    posted, expected = str(form.get("csrf_token") or ""), request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(posted, expected):
        return _login_form(request, next_path, "This form expired. Please sign in again.", username, 403)
    svc = services(request)
    try:
        from dockyard.api.auth import client_address

        principal = await run_in_threadpool(svc.accounts.authenticate, username, password, client_address(request))
    except TooManyRequests:
        return _login_form(request, next_path, "Too many failed sign-ins. Wait a minute and try again.",
                           username, 429)
    if principal is None or principal.is_anonymous or principal.token_id is not None:
        return _login_form(request, next_path, "Wrong username or password.", username, 401)
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        await run_in_threadpool(svc.portal_sessions.end, old)
    session = await run_in_threadpool(svc.portal_sessions.create, principal.name or "")
    response = redirect(next_path)
    response.set_cookie(SESSION_COOKIE, session.id, httponly=True, samesite="lax", path="/",
                        secure=request.url.scheme == "https")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request, current: CurrentViewer, form: Form) -> Response:
    if current.session_id:
        await run_in_threadpool(services(request).portal_sessions.end, current.session_id)
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
async def home(current: CurrentViewer) -> Response:
    return redirect("/repositories")
