"""What every portal page shares: templates, the signed-in user, CSRF, errors, headers.

Pages are server-rendered (Jinja2, autoescaped) and work without JavaScript; `static/portal.js`
only adds conveniences (typed confirmation in a dialog, copy buttons). Pages decide nothing:
they call the same commands and read the same read models as `/api/v0`, through the same
policy, so a page for something the user cannot read is a 404 like the API's.

Contract of a portal route (`PortalRoute`):
- every answer carries `Content-Security-Policy` (no inline script, `frame-ancestors 'none'`)
  and the other hardening headers;
- `Unauthorized` redirects to the sign-in page; `NotFound` renders the 404 page; `Denied`
  the 403 page; any other domain error the error page with its message and status;
- every POST must carry the session's CSRF token in the `csrf_token` field (403 otherwise).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from dockyard.api.auth import client_address
from dockyard.api.v2.common import Services
from dockyard.domain.access import Principal
from dockyard.domain.errors import Denied, DomainError, NotFound, Unauthorized

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
ASSETS = "/portal-assets"
SESSION_COOKIE = "dockyard_session"
LOGIN_CSRF_COOKIE = "dockyard_login_csrf"

SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class PortalPageError(Exception):
    """Raised by dependencies to answer with a ready response (a redirect to sign in)."""

    def __init__(self, response: Response) -> None:
        self.response = response


class PortalRoute(APIRoute):
    """A portal page: domain errors become pages, every answer gets the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                response = await handler(request)
            except PortalPageError as exc:
                response = exc.response
            except Unauthorized:
                response = login_redirect(request)
            except NotFound as exc:
                response = error_page(request, 404, "Not found", exc.message)
            except Denied as exc:
                response = error_page(request, 403, "Not allowed", exc.message)
            except DomainError as exc:
                response = error_page(request, status_of(exc), "That did not work", exc.message)
            response.headers.update(SECURITY_HEADERS)
            return response

        return page


def status_of(error: DomainError) -> int:
    """The HTTP status the API answers for `error` (403 refused, 404 not found, 409 conflict…):
    a form shown again with an error keeps the status the API would give."""
    from dockyard.api.errors import code_for  # the one table of errors

    return code_for(error)[1]


def services(request: Request) -> Services:
    return request.app.state.services


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def safe_next(target: str | None) -> str:
    """A local path to go to after signing in (never another site: `//evil` or `https://…`)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/repositories"
    return target


class Viewer:
    """The signed-in user of a page: principal, session and what the layout shows."""

    def __init__(self, principal: Principal, session_id: str | None, csrf: str, mode: str) -> None:
        self.principal = principal
        self.session_id = session_id
        self.csrf = csrf
        self.mode = mode

    @property
    def name(self) -> str:
        return self.principal.name or "anonymous"

    @property
    def is_admin(self) -> bool:
        return self.principal.is_admin


def _current(request: Request, svc: Services) -> Viewer | None:
    """The viewer from the session cookie (blocking). In auth mode `none` everyone is admin."""
    mode = svc.auth.mode()
    session = svc.portal_sessions.get(request.cookies.get(SESSION_COOKIE, ""))
    if session is not None:
        row = svc.identity_view.user(session.username)
        if row is None or not row["active"]:  # deactivated: the session ends with the account
            svc.portal_sessions.end(session.id)
            session = None
        else:
            role = "admin" if mode == "none" else row["role"]
            return Viewer(Principal(row["name"], role), session.id, session.csrf, mode)
    if mode == "none":
        return Viewer(Principal(None, "admin"), None, "", mode)
    return None


async def viewer(request: Request) -> Viewer:
    """The signed-in viewer, bound as the actor of the events this request records;
    otherwise a redirect to the sign-in page."""
    svc = services(request)
    found = await run_in_threadpool(_current, request, svc)
    if found is None:
        raise PortalPageError(login_redirect(request))
    svc.auth.bind(request, found.principal)
    request.state.viewer = found
    return found


CurrentViewer = Annotated[Viewer, Depends(viewer)]


async def admin_viewer(current: CurrentViewer) -> Viewer:
    if not current.is_admin:
        raise NotFound("no such page")  # like the API: what a user may not see does not exist
    return current


AdminViewer = Annotated[Viewer, Depends(admin_viewer)]


async def checked_form(request: Request, current: CurrentViewer) -> dict[str, str]:
    """The posted form, after checking its CSRF token against the session's (403 otherwise)."""
    form = await request.form()
    token = str(form.get("csrf_token") or "")
    if current.session_id is not None and not hmac.compare_digest(token, current.csrf):
        raise PortalPageError(error_page(request, 403, "Form expired",
                                         "This form is missing its security token. Reload the page and try again."))
    return {k: str(v) for k, v in form.items() if isinstance(v, str)}


Form = Annotated[dict[str, str], Depends(checked_form)]


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    """Render `template` with the layout's context (viewer, CSRF token, the current section)."""
    current = getattr(request.state, "viewer", None)
    return templates.TemplateResponse(request, template, {"viewer": current, "assets": ASSETS, **context},
                                      status_code=status_code)


def error_page(request: Request, status_code: int, title: str, message: str) -> Response:
    return render(request, "error.html", status_code, title=title, message=message)


def redirect(path: str) -> RedirectResponse:
    """After a successful POST: see the result with a GET (303)."""
    return RedirectResponse(path, status_code=303)


def address(request: Request) -> str:
    return client_address(request)
