"""What every `/api/v0/` route depends on: the services, who is calling, and the checks the
management API adds to the repository policy of `domain.access`.

Credentials: HTTP Basic (a password, or an access token `dyt_…` as the password) or
`Authorization: Bearer dyt_…`. The dependencies are `async def`; the blocking parts (argon2,
read-model queries) run in the thread pool. Every request binds its actor (user, client address,
token), so the events a write records say who and from where.

In auth mode `none` (DTR's "None") every caller may do everything: the principal gets the
`admin` role for the request (events still carry the real name, or `anonymous`).

Rules beyond `domain.access`, where DTR's lab is silent:
- signed-in users may read accounts, organisations, teams and members;
- writes to accounts, organisations, teams and members through an access token need an
  `admin`-scoped token (repository writes are capped by the token through the policy);
- a password change or a new access token needs a password sign-in, not a token.
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
from dockyard.domain.errors import Denied, NotFound, Unauthorized


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


Caller = Annotated[Principal, Depends(current_principal)]


async def signed_in(principal: Caller) -> Principal:
    """A signed-in caller (anyone in auth mode `none`)."""
    if principal.is_anonymous and not principal.is_admin:
        raise _unauthorized()
    return principal


SignedIn = Annotated[Principal, Depends(signed_in)]


async def global_admin(principal: SignedIn) -> Principal:
    if not principal.is_admin:
        raise Denied("only a global admin may do this")
    return principal


GlobalAdmin = Annotated[Principal, Depends(global_admin)]


# -- checks routes call with the resource in hand (blocking: run them in the thread pool) -------

def require_token_admin(principal: Principal) -> None:
    """Account, organisation and team writes through an access token need an admin-scoped one."""
    if principal.token_level not in (None, "admin"):
        raise Denied("this access token's scope does not allow account or team changes")


def require_password_sign_in(principal: Principal) -> None:
    if principal.token_id is not None:
        raise Denied("sign in with a password, not an access token, to do this")


def require_organization(svc: Services, organization: str) -> None:
    row = svc.registry.identity.account(organization)
    if row is None or row["kind"] != "organization":
        raise NotFound("no such organisation", {"organization": organization})


def require_org_manager(svc: Services, principal: Principal, organization: str) -> None:
    """Team management: global admins, and members of the organisation's `owners` team."""
    require_organization(svc, organization)
    require_token_admin(principal)
    if principal.is_admin:
        return
    if principal.name is None or not svc.registry.identity.is_owner(principal.name, organization):
        raise Denied("only the organisation's owners may manage its teams", {"organization": organization})


def require_self_or_admin(principal: Principal, user: str) -> None:
    if not principal.is_admin and principal.name != user:
        raise Denied("only the user themself or a global admin may do this", {"user": user})


def repository_level(svc: Services, principal: Principal, repository: str) -> str:
    """The caller's level on `repository`; `none` when it does not exist."""
    facts = svc.registry.identity.repository_facts(principal.name, repository)
    if not facts.exists:
        return "none"
    if principal.is_anonymous and principal.is_admin:  # auth mode `none`
        return "admin"
    return access.repository_level(principal, repository, facts)


def readable_repository(svc: Services, principal: Principal, repository: str, needed: str = "read-only") -> str:
    """The caller's level on a repository they may read, at least `needed`.

    A repository the caller cannot read is a 404 exactly like a missing one; one they can
    read but not change enough is a 403.
    """
    level = repository_level(svc, principal, repository)
    if level == "none":
        raise NotFound("no such repository", {"repository": repository})
    if access.LEVELS.index(level) < access.LEVELS.index(needed):
        raise Denied(f"this needs {needed} access to the repository", {"repository": repository})
    return level


def may_create_repository(svc: Services, principal: Principal, repository: str) -> bool:
    if principal.is_anonymous:
        return principal.is_admin  # auth mode `none`
    facts = svc.registry.identity.repository_facts(principal.name, repository)
    return access.may_create(principal, repository, facts)
