"""What every `/api/v0/` route depends on: the services and who is calling; and names for the
checks routes make, whose rules are `domain.access` (applied by `commands.management`).

Credentials: HTTP Basic (a password, or an access token `dyt_…` as the password) or
`Authorization: Bearer dyt_…`. The dependencies are `async def`; the blocking parts (argon2,
read-model queries) run in the thread pool. Every request binds its actor (user, client address,
token), so the events a write records say who and from where.

In auth mode `none` (DTR's "None") every caller may do everything: the principal gets the
`admin` role for the request (events still carry the real name, or `anonymous`).

Who may manage what (accounts, teams, repositories; where DTR's lab is silent too) is
`domain.access`, so the portal and any other front end meet the same rules.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.openapi.models import HTTPBase as HTTPBaseModel
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase
from starlette.concurrency import run_in_threadpool

from dockyard.api.auth.credentials import Bearer, client_address, parse_authorization
from dockyard.api.v2.common import Services
from dockyard.commands.access_tokens import is_access_token
from dockyard.domain import access
from dockyard.domain.access import ANONYMOUS, Principal
from dockyard.domain.errors import Unauthorized


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


class _Scheme(SecurityBase):
    """Names a credential scheme in `/openapi.json` (the console's "Authorize" button). The
    header itself is read by `current_principal`, which also takes UTF-8 passwords."""

    def __init__(self, model: HTTPBaseModel, name: str) -> None:
        self.model = model
        self.scheme_name = name

    async def __call__(self) -> None:
        return None


_BASIC = _Scheme(HTTPBaseModel(scheme="basic", description="A password, or an access token `dyt_…` as the "
                               "password."), "basic")
_BEARER = _Scheme(HTTPBearerModel(description="An access token `dyt_…`."), "accessToken")


def _unauthorized(message: str = "authentication required") -> Unauthorized:
    """401; `dockyard.api.errors` adds the `Basic realm="dockyard"` challenge on `/api/` paths."""
    return Unauthorized(message)



def _credentials(header: str) -> tuple[str, str] | None:
    """(user, password) from a Basic or `Bearer dyt_…` header; None without credentials."""
    credentials = parse_authorization(header)  # Unauthorized when malformed
    if isinstance(credentials, Bearer):
        if not is_access_token(credentials.token):
            raise _unauthorized("the management API takes access tokens (dyt_…), not registry tokens")
        return "", credentials.token
    return (credentials.user, credentials.password) if credentials else None


async def current_principal(request: Request, svc: ServicesDep, _basic: Annotated[None, Security(_BASIC)],
                            _bearer: Annotated[None, Security(_BEARER)]) -> Principal:
    """Who is calling (anonymous without credentials); 401 for wrong credentials."""
    credentials = _credentials(request.headers.get("authorization", ""))
    principal = ANONYMOUS
    if credentials is not None:
        name, secret = credentials
        address = client_address(request)

        def authenticate() -> Principal | None:
            user = name or svc.tokens.owner_of(secret)
            return svc.accounts.authenticate(user, secret, address) if user else None

        found = await run_in_threadpool(authenticate)
        if found is None:
            raise _unauthorized("invalid username, password or token")
        principal = found
    if await run_in_threadpool(svc.auth.mode) == "none":
        principal = Principal(principal.name, "admin", principal.token_id, None, ())
    svc.auth.bind(request, principal)
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]
"""The caller, anonymous included (not `api.auth.Caller`, which is a `/v2/` caller with its token's grants)."""


async def signed_in(principal: PrincipalDep) -> Principal:
    """A signed-in caller (anyone in auth mode `none`)."""
    access.check_signed_in(principal)
    return principal


SignedIn = Annotated[Principal, Depends(signed_in)]


async def global_admin(principal: SignedIn) -> Principal:
    access.check_admin(principal)
    return principal


GlobalAdmin = Annotated[Principal, Depends(global_admin)]


# -- checks routes call with the resource in hand ------------------------------------------------
# The rules are `domain.access`, applied with read-model facts by `commands.management` (which the
# portal calls too); these only name them for the routes. Blocking: run them in the thread pool.

def require_token_admin(principal: Principal) -> None:
    access.check_account_scope(principal)


def require_organization(svc: Services, organization: str) -> None:
    svc.management.check_organization(organization)


def require_org_manager(svc: Services, principal: Principal, organization: str) -> None:
    svc.management.check_may_manage_teams(principal, organization)


def repository_level(svc: Services, principal: Principal, repository: str) -> str:
    return svc.management.repository_level(principal, repository)


def readable_repository(svc: Services, principal: Principal, repository: str, needed: str = "read-only") -> str:
    return svc.management.check_level(principal, repository, needed)


def may_create_repository(svc: Services, principal: Principal, repository: str) -> bool:
    return svc.management.may_create_repository(principal, repository)
