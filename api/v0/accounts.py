"""`/api/v0/accounts`: users and organisations (one namespace: a name is one or the other).

Users are made by global admins; organisations by any signed-in user, who becomes the first
member of its `owners` team. DELETE deactivates a user (the log keeps everything they did).
No change may leave the registry without an active global admin (409).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from dockyard.api.v0.deps import (
    GlobalAdmin,
    ServicesDep,
    SignedIn,
    require_password_sign_in,
    require_token_admin,
)
from dockyard.api.v0.paging import Cursor, Limit, decode_cursor, encode_cursor, link_next
from dockyard.api.v0.schemas import Account, AccountChange, AccountList, NewAccount, NewUser
from dockyard.api.v2.common import Services
from dockyard.domain.errors import Conflict, Denied, NotFound

router = APIRouter(prefix="/accounts", tags=["accounts"])


def account_view(row: dict[str, Any]) -> Account:
    if row["kind"] == "organization":
        return Account(name=row["name"], type="organization", created_at=row["created_at"])
    return Account(name=row["name"], type="user", role=row["role"], active=bool(row["active"]),
                   source=row["source"], created_at=row["created_at"])


def _account(svc: Services, name: str) -> dict[str, Any]:
    row = svc.registry.identity.account(name)
    if row is None:
        raise NotFound("no such account", {"name": name})
    return row


def _keeps_an_admin(svc: Services, name: str, role: str | None, active: bool | None) -> None:
    """Refuse a change to `name` that would leave no active global admin."""
    user = svc.registry.identity.user(name)
    if user is None or user["role"] != "admin" or not user["active"]:
        return
    if (role is None or role == "admin") and active is not False:
        return
    others = [r for r in svc.registry.identity.accounts("user")
              if r["name"] != name and r["role"] == "admin" and r["active"]]
    if not others:
        raise Conflict("the last active global admin cannot be demoted or deactivated", {"name": name})


@router.post("", status_code=status.HTTP_201_CREATED, response_model_exclude_none=True,
             summary="Create a user (global admins) or an organisation (any signed-in user)")
async def create_account(body: NewAccount, principal: SignedIn, svc: ServicesDep) -> Account:
    require_token_admin(principal)
    if isinstance(body, NewUser):
        if not principal.is_admin:
            raise Denied("only a global admin may create users")

        def create() -> dict[str, Any]:
            svc.accounts.create_user(body.name, body.password, body.role)
            return _account(svc, body.name)
    else:
        def create() -> dict[str, Any]:
            svc.identity.create_organization(body.name, principal.name or "")
            return _account(svc, body.name)

    return account_view(await run_in_threadpool(create))


@router.get("", response_model_exclude_none=True, summary="List users and organisations (paged, by name)")
async def list_accounts(request: Request, response: Response, principal: SignedIn, svc: ServicesDep,
                        type: Literal["user", "organization"] | None = Query(None), limit: Limit = 100,
                        cursor: Cursor = None) -> AccountList:
    # Keyset paging in SQL (there may be many directory users): one row more says a next page exists.
    rows = await run_in_threadpool(svc.registry.identity.accounts_page, type, decode_cursor(cursor), limit + 1)
    shown, more = rows[:limit], len(rows) > limit
    link_next(request, response, encode_cursor(shown[-1]["name"]) if more else None)
    return AccountList(accounts=[account_view(r) for r in shown])


@router.get("/{name}", response_model_exclude_none=True, summary="One user or organisation")
async def get_account(name: str, principal: SignedIn, svc: ServicesDep) -> Account:
    return account_view(await run_in_threadpool(_account, svc, name))


@router.patch("/{name}", response_model_exclude_none=True,
              summary="Change a user's role or active flag (global admins) or password (admins or the user)")
async def update_account(name: str, body: AccountChange, principal: SignedIn, svc: ServicesDep) -> Account:
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if ("role" in changes or "active" in changes) and not principal.is_admin:
        raise Denied("only a global admin may change a role or deactivate a user")
    if "password" in changes:
        if not principal.is_admin and principal.name != name:
            raise Denied("only the user themself or a global admin may change a password")
        require_password_sign_in(principal)
    require_token_admin(principal)

    def update() -> dict[str, Any]:
        if svc.registry.identity.user(name) is None:
            raise NotFound("no such user", {"name": name})
        _keeps_an_admin(svc, name, body.role, body.active)
        svc.accounts.update_user(name, role=body.role, password=body.password, active=body.active)
        return _account(svc, name)

    return account_view(await run_in_threadpool(update))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT,
               summary="Deactivate a user (global admins); their history stays in the log")
async def deactivate_account(name: str, principal: GlobalAdmin, svc: ServicesDep) -> None:
    require_token_admin(principal)

    def deactivate() -> None:
        if svc.registry.identity.user(name) is None:
            raise NotFound("no such user", {"name": name})
        _keeps_an_admin(svc, name, None, False)
        svc.accounts.update_user(name, active=False)

    await run_in_threadpool(deactivate)
