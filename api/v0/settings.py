"""`/api/v0/settings/auth`: the authentication mode (DTR's Settings > Auth) and the LDAP test.

Global admins only. The LDAP bind password goes to the secret store, never into the log (the
event records only that it changed) and never into a response. The store is written before the
event, as blob bytes are written before the event that names them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body
from starlette.concurrency import run_in_threadpool

from dockyard.api.v0.deps import GlobalAdmin, ServicesDep, require_token_admin
from dockyard.api.v0.schemas import AuthSettings, AuthSettingsChange, LdapSettings, LdapSettingsView, LdapTestResult
from dockyard.api.v2.common import Services
from dockyard.commands.directory import LdapConfig, LdapDirectory
from dockyard.commands.secrets import LDAP_BIND_PASSWORD
from dockyard.domain.errors import InvalidRequest

router = APIRouter(prefix="/settings/auth", tags=["settings"])


def _view(svc: Services) -> AuthSettings:
    stored = svc.identity_view.auth_settings()
    known = {field.alias or name for name, field in LdapSettingsView.model_fields.items()}
    view = LdapSettingsView.model_validate({k: v for k, v in stored["ldap"].items() if k in known})
    view.bind_password_set = bool(svc.secrets.get(LDAP_BIND_PASSWORD))
    return AuthSettings(mode=stored["mode"], ldap=view)


def _public(ldap: LdapSettings) -> dict[str, Any]:
    """The LDAP settings that may enter the log: everything but the bind password."""
    return ldap.model_dump(by_alias=True, exclude={"bind_password"})


@router.get("", summary="The authentication mode and LDAP settings (no password)")
async def get_auth_settings(principal: GlobalAdmin, svc: ServicesDep) -> AuthSettings:
    return await run_in_threadpool(_view, svc)


@router.put("", summary="Change the authentication mode and LDAP settings")
async def change_auth_settings(body: AuthSettingsChange, principal: GlobalAdmin, svc: ServicesDep) -> AuthSettings:
    require_token_admin(principal)

    def change() -> AuthSettings:
        save_auth_settings(svc, body)
        return _view(svc)

    return await run_in_threadpool(change)


def save_auth_settings(svc: Services, body: AuthSettingsChange) -> None:
    """Store a new auth mode and LDAP settings (the bind password in the secret store, first).
    Blocking; shared by the API and the portal's Settings > Auth."""
    ldap = _public(body.ldap) if body.ldap is not None else svc.identity_view.auth_settings()["ldap"]
    changed = body.ldap is not None and body.ldap.bind_password is not None
    if body.mode == "ldap" and not ldap.get("url"):  # checked before the secret is stored
        raise InvalidRequest("LDAP mode needs ldap.url")
    if changed:
        assert body.ldap is not None and body.ldap.bind_password is not None
        svc.secrets.put(LDAP_BIND_PASSWORD, body.ldap.bind_password)
    svc.identity.change_auth_settings(body.mode, ldap, changed)
    svc.accounts.forget_cached()


@router.post("/ldap/test", summary="Test the LDAP connection with the given settings, or the stored ones")
async def test_ldap(principal: GlobalAdmin, svc: ServicesDep,
                    body: LdapSettings | None = Body(None)) -> LdapTestResult:
    def test() -> LdapTestResult:
        return try_ldap_settings(svc, body)

    return await run_in_threadpool(test)


def try_ldap_settings(svc: Services, body: LdapSettings | None) -> LdapTestResult:
    """Try the given LDAP settings (or the stored ones): bind, then count the users. Blocking."""
    password = body.bind_password if body is not None else None
    if password is None:
        password = svc.secrets.get(LDAP_BIND_PASSWORD) or ""
    settings = _public(body) if body is not None else svc.identity_view.auth_settings()["ldap"]
    result = LdapDirectory(LdapConfig.from_settings(settings, password)).test()
    return LdapTestResult(**result)
