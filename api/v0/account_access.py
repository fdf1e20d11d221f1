"""`GET /api/v0/accounts/{name}/access?repository=NS/REPO&at=…`: what an account could do to a
repository at an instant — the identity and registry events up to then folded
(`projections.as_of`) and put through the same pure policy as every request
(`domain.access`). "Who could push to engineering/madrid last week?"

Who may ask: global admins, the account itself, and the owners of the repository's
organisation (who manage its teams).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from dockyard.api.v0.as_of import At, position_of, scoped
from dockyard.api.v0.deps import ServicesDep, SignedIn
from dockyard.api.v0.schemas import AccountAccess
from dockyard.api.v2.common import Services
from dockyard.domain import access
from dockyard.domain.access import Principal
from dockyard.domain.errors import Denied, InvalidRequest, NotFound

router = APIRouter(tags=["accounts"])


def account_access(svc: Services, principal: Principal, name: str, repository: str, at: str | None) -> AccountAccess:
    namespace = access.namespace_of(repository)
    if not namespace:
        raise InvalidRequest("repository must be NAMESPACE/NAME", {"repository": repository})
    if not (principal.is_admin or principal.name == name
            or (principal.name is not None and svc.identity_view.is_owner(principal.name, namespace))):
        raise Denied("only a global admin, the account itself or the organisation's owners may ask this",
                     {"account": name, "repository": repository})
    position = position_of(svc, at) if at is not None else svc.read_side.head()
    state = scoped(svc, position, repository, (name,))
    account = state.identity_view.user(name)
    if account is None:
        if svc.identity_view.account(name) is None:
            raise NotFound("no such user", {"account": name})
        level = "none"  # made after that instant
    elif not account["active"]:
        level = "none"
    else:
        then = Principal(name, account["role"])
        facts = state.identity_view.repository_facts(name, repository)
        level = access.repository_level(then, repository, facts) if facts.exists else "none"
    return AccountAccess(account=name, repository=repository, position=position, access_level=level,
                         actions=sorted(access.ACTIONS[level]))


@router.get("/accounts/{name}/access", summary="What a user could do to a repository, now or as of ?at= "
                                               "(global admins, the user, the organisation's owners)")
async def get_account_access(
    name: str, principal: SignedIn, svc: ServicesDep,
    repository: Annotated[str, Query(description="NAMESPACE/NAME")], at: At = None,
) -> AccountAccess:
    return await run_in_threadpool(account_access, svc, principal, name, repository, at)
