"""`/api/v0/accounts`: users and organisations (one namespace: a name is one or the other).

Users are made by global admins; organisations by any signed-in user, who becomes the first
member of its `owners` team. DELETE deactivates a user (the log keeps everything they did).
No change may leave the registry without an active global admin (409); a password must meet
the policy (400). The rules are `commands.management` and `domain.access`, as for the portal.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from dockyard.api.v0.deps import ServicesDep, SignedIn
from dockyard.api.v0.paging import Cursor, Limit, decode_cursor, encode_cursor, link_next
from dockyard.api.v0.schemas import Account, AccountChange, AccountList, NewAccount, NewUser
from dockyard.api.v2.common import Services
from dockyard.domain.errors import NotFound

router = APIRouter(prefix="/accounts", tags=["accounts"])


def account_view(row: dict[str, Any]) -> Account:
    if row["kind"] == "organization":
        return Account(name=row["name"], type="organization", role=None, active=None, source=None,
                       created_at=row["created_at"])
    return Account(name=row["name"], type="user", role=row["role"], active=bool(row["active"]),
                   source=row["source"], created_at=row["created_at"])


def _account(svc: Services, name: str) -> dict[str, Any]:
    row = svc.identity_view.account(name)
    if row is None:
        raise NotFound("no such account", {"name": name})
    return row


@router.post("", status_code=status.HTTP_201_CREATED, response_model_exclude_none=True,
             summary="Create a user (global admins) or an organisation (any signed-in user)")
async def create_account(body: NewAccount, principal: SignedIn, svc: ServicesDep) -> Account:
    def create() -> dict[str, Any]:
        if isinstance(body, NewUser):
            svc.management.create_user(principal, body.name, body.password, body.role)
        else:
            svc.management.create_organization(principal, body.name)
        return _account(svc, body.name)

    return account_view(await run_in_threadpool(create))


@router.get("", response_model_exclude_none=True, summary="List users and organisations (paged, by name)")
async def list_accounts(request: Request, response: Response, principal: SignedIn, svc: ServicesDep,
                        type: Literal["user", "organization"] | None = Query(None), limit: Limit = 100,
                        cursor: Cursor = None) -> AccountList:
    # Keyset paging in SQL (there may be many directory users): one row more says a next page exists.
    rows = await run_in_threadpool(svc.identity_view.accounts_page, type, decode_cursor(cursor), limit + 1)
    shown, more = rows[:limit], len(rows) > limit
    link_next(request, response, encode_cursor(shown[-1]["name"]) if more else None)
    return AccountList(accounts=[account_view(r) for r in shown])


@router.get("/{name}", response_model_exclude_none=True, summary="One user or organisation")
async def get_account(name: str, principal: SignedIn, svc: ServicesDep) -> Account:
    return account_view(await run_in_threadpool(_account, svc, name))


@router.patch("/{name}", response_model_exclude_none=True,
              summary="Change a user's role or active flag (global admins) or password (admins or the user)")
async def update_account(name: str, body: AccountChange, principal: SignedIn, svc: ServicesDep) -> Account:
    def update() -> dict[str, Any]:
        svc.management.update_user(principal, name, role=body.role, active=body.active, password=body.password)
        return _account(svc, name)

    return account_view(await run_in_threadpool(update))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT,
               summary="Deactivate a user (global admins); their history stays in the log")
async def deactivate_account(name: str, principal: SignedIn, svc: ServicesDep) -> None:
    await run_in_threadpool(svc.management.deactivate_user, principal, name)
