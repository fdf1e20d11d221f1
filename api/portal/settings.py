"""`Settings` (global admins): the tabs `General`, `Auth`, `Storage`, `Garbage Collection`
and `License`, as DTR's.

`Auth` changes the mode through the same function as `PUT /api/v0/settings/auth` (the LDAP bind
password goes to the secret store, never into the log) and lists the users with `Add user`,
as the lab's Task 2 does it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from dockyard.api.portal.users import users_context
from dockyard.api.portal.web import AdminViewer, Form, PortalRoute, redirect, render, services, status_of
from dockyard.api.v0.schemas import AuthSettingsChange, LdapSettings
from dockyard.api.v0.settings import _view as auth_view
from dockyard.api.v0.settings import save_auth_settings, try_ldap_settings
from dockyard.api.v0.storage_settings import storage_view
from dockyard.api.v2.common import Services
from dockyard.domain.errors import DomainError

router = APIRouter(route_class=PortalRoute, include_in_schema=False)

TABS = [("/settings/general", "General"), ("/settings/auth", "Auth"), ("/settings/storage", "Storage"),
        ("/settings/gc", "Garbage Collection"), ("/settings/license", "License")]
METHODS = [("none", "None"), ("managed", "Managed Authentication"), ("ldap", "LDAP")]


def _page(request: Request, template: str, tab: str, status_code: int = 200, **context: Any) -> Response:
    return render(request, template, status_code, section="settings", tabs=TABS, tab=tab, **context)


@router.get("/settings")
async def settings_home(current: AdminViewer) -> Response:
    return redirect("/settings/general")


async def render_general(request: Request, status_code: int = 200, error: str | None = None,
                         value: str | None = None) -> Response:
    svc = services(request)
    saved = await run_in_threadpool(svc.general.domain_name)
    return _page(request, "settings_general.html", "General", status_code, domain_name=saved,
                 value=saved if value is None else value, error=error, listen=svc.settings.listen)


@router.get("/settings/general")
async def general(request: Request, current: AdminViewer) -> Response:
    return await render_general(request)


@router.post("/settings/general")
async def save_general(request: Request, current: AdminViewer, form: Form) -> Response:
    value = form.get("domain_name", "")
    try:
        await run_in_threadpool(services(request).general.change_domain_name, value)
    except DomainError as exc:
        return await render_general(request, status_of(exc), exc.message, value)
    return redirect("/settings/general")


def auth_context(svc: Services, after: str | None = None) -> dict[str, Any]:
    return {**users_context(svc, after), "auth": auth_view(svc), "methods": METHODS, "back_to": "/settings/auth"}


async def render_auth(request: Request, status_code: int = 200, **overrides: Any) -> Response:
    """The Auth tab; `overrides` carry a failed form's values and errors."""
    context = await run_in_threadpool(auth_context, services(request), request.query_params.get("after"))
    defaults: dict[str, Any] = {"values": {"role": "none"}, "errors": {}, "error": None, "open_add": False,
                                "auth_error": None, "test_result": None}
    return _page(request, "settings_auth.html", "Auth", status_code, **{**defaults, **context, **overrides})


@router.get("/settings/auth")
async def auth_page(request: Request, current: AdminViewer) -> Response:
    return await render_auth(request)


def _ldap_from(form: dict[str, str]) -> LdapSettings:
    return LdapSettings(url=form.get("url", "").strip(), bind_dn=form.get("bind_dn", "").strip(),
                        bind_password=form.get("bind_password") or None,
                        user_base_dn=form.get("user_base_dn", "").strip(),
                        user_filter=form.get("user_filter", "").strip() or "(objectClass=inetOrgPerson)",
                        username_attribute=form.get("username_attribute", "").strip() or "uid",
                        start_tls=form.get("start_tls") == "on")


@router.post("/settings/auth")
async def save_auth(request: Request, current: AdminViewer, form: Form) -> Response:
    svc = services(request)
    test_result = None
    try:
        ldap = _ldap_from(form) if form.get("method") == "ldap" or form.get("url") else None
        if form.get("action") == "test":
            test_result = await run_in_threadpool(try_ldap_settings, svc, ldap)
        else:
            change = AuthSettingsChange(mode=form.get("method", "managed"), ldap=ldap)
            await run_in_threadpool(save_auth_settings, svc, change)
            return redirect("/settings/auth")
        error = None
    except ValidationError as exc:
        error = "; ".join(str(e.get("msg", "")).removeprefix("Value error, ") for e in exc.errors())
    except DomainError as exc:
        error = exc.message
    return await render_auth(request, 400 if error else 200, auth_error=error, test_result=test_result)


async def render_storage(request: Request, status_code: int = 200, error: str | None = None,
                         url: str | None = None) -> Response:
    svc = services(request)
    view = storage_view(svc, await run_in_threadpool(svc.storage_setting.current))
    return _page(request, "settings_storage.html", "Storage", status_code, storage=view,
                 storage_url=_display_url(view.url), url=view.url if url is None else url, error=error)


@router.get("/settings/storage")
async def storage(request: Request, current: AdminViewer) -> Response:
    return await render_storage(request)


@router.post("/settings/storage")
async def save_storage(request: Request, current: AdminViewer, form: Form) -> Response:
    """The same command as PUT /api/v0/settings/storage: probed, then recorded, or refused."""
    url = form.get("url", "")
    credentials = dict(line.split("=", 1) for line in form.get("credentials", "").splitlines()
                       if "=" in line and line.split("=", 1)[0].strip())
    try:
        await run_in_threadpool(services(request).storage_setting.change, url,
                                {k.strip(): v.strip() for k, v in credentials.items()})
    except DomainError as exc:
        return await render_storage(request, status_of(exc), exc.message, url)
    return redirect("/settings/storage")


def _display_url(url: str) -> str:
    """The storage URL without credentials or query parameters (they may hold secrets)."""
    head, _, _ = url.partition("?")
    if "@" in head:
        scheme, _, rest = head.partition("://")
        head = f"{scheme}://{rest.rpartition('@')[2]}"
    return head


@router.get("/settings/license")
async def license_page(request: Request, current: AdminViewer) -> Response:
    return _page(request, "settings_license.html", "License")
