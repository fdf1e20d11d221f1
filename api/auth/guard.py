"""Authorising `/v2/` requests: who is calling (HTTP Basic or a registry JWT), whether they may
do what the request does, and the `WWW-Authenticate` challenge that sends a client to the token
service when not. Binds the actor every event of the request records.

Auth mode `none` (DTR's "None") lets every caller do everything.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from cryptography.hazmat.primitives.asymmetric import ec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from dockyard.api.auth.credentials import Basic, client_address, parse_authorization
from dockyard.api.auth.scopes import Scope
from dockyard.api.auth.tokens import Caller, TokenService
from dockyard.api.read_threads import read_in_thread
from dockyard.api.settings import Settings
from dockyard.commands.accounts import Accounts
from dockyard.domain.access import ANONYMOUS, Principal
from dockyard.domain.actor import ANONYMOUS_NAME, Actor, current_actor
from dockyard.domain.errors import Denied, Unauthorized
from dockyard.projections.identity_queries import IdentityQueries


class Auth:
    """`clock` (seconds since the epoch) is when tokens are issued and when they expire."""

    def __init__(self, settings: Settings, accounts: Accounts, identity_view: IdentityQueries,
                 key: ec.EllipticCurvePrivateKey, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.accounts = accounts
        self.tokens = TokenService(settings, accounts, identity_view, key, clock)
        # Settings > General's domain name (set by build_services), read at most every few seconds.
        self.domain_name: Callable[[], str] = lambda: ""
        self._domain: tuple[float, str] = (0.0, "")

    def mode(self) -> str:
        """The auth mode (`none`, `managed`, `ldap`). Blocking at most once a second."""
        return self.tokens.mode()

    def allowed(self, principal: Principal, scope: Scope) -> frozenset[str]:
        """The actions of `scope` the principal may have. Blocking (reads the read model)."""
        return self.tokens.allowed(principal, scope)

    # -- who is calling ------------------------------------------------------------------------

    async def authenticate(self, credentials: Basic, request: Request) -> Principal | None:
        """The principal for Basic credentials (a password or an access token), or None.
        `TooManyRequests` while the user is throttled from this address."""
        return await run_in_threadpool(self.accounts.authenticate, credentials.user, credentials.password,
                                       client_address(request))

    async def caller(self, request: Request) -> Caller | None:
        """Who is calling: a Caller, ANONYMOUS without credentials, None for bad credentials."""
        try:
            credentials = parse_authorization(request.headers.get("authorization", ""))
        except Unauthorized:
            return None
        if credentials is None:
            return Caller(ANONYMOUS)
        if isinstance(credentials, Basic):
            principal = await self.authenticate(credentials, request)
            return Caller(principal) if principal else None
        hit, caller = self.tokens.cached(credentials.token)  # the hot path: no thread hop
        if hit:
            return caller
        return await read_in_thread(self.tokens.verify, credentials.token)

    def bind(self, request: Request, principal: Principal) -> None:
        """Attribute the events this request records to `principal` (and its access token)."""
        current_actor.set(Actor(principal.name or ANONYMOUS_NAME, client_address(request), principal.token_id))

    # -- what they may do ----------------------------------------------------------------------

    def _domain_base(self, request: Request) -> str | None:
        """`scheme://DOMAIN[:port]` when a domain name is set (its own port, else the request's)."""
        now = time.monotonic()
        if now >= self._domain[0]:
            self._domain = (now + 5.0, self.domain_name())
        domain = self._domain[1]
        if not domain:
            return None
        port = request.url.port
        has_port = domain.rsplit("]", 1)[-1].count(":") == 1
        return f"{request.url.scheme}://{domain}" + (f":{port}" if port and not has_port else "")

    def public_base(self, request: Request) -> str:
        """The address clients are told to use: DOCKYARD_PUBLIC_URL, else `scheme://DOMAIN[:port]` once a
        domain name is set, else "" (none configured: callers stay relative or use the address asked)."""
        return (self.settings.public_url or self._domain_base(request) or "").rstrip("/")

    def realm(self, request: Request) -> str:
        """Where clients get tokens: DOCKYARD_PUBLIC_URL, else the domain name, else the address asked."""
        return (self.public_base(request) or str(request.base_url).rstrip("/")) + "/auth/token"

    def challenge(self, request: Request, scope: Scope | None, error: str | None = None,
                  also: Sequence[Scope] = ()) -> dict[str, str]:
        """The `WWW-Authenticate` header asking for `scope` and the optional scopes `also`
        (space-separated in one `scope` parameter, as Distribution writes them)."""
        value = f'Bearer realm="{self.realm(request)}",service="{self.settings.token_service}"'
        if scope is not None:
            value += ',scope="' + " ".join(str(s) for s in (scope, *also)) + '"'
        if error:
            value += f',error="{error}"'
        return {"WWW-Authenticate": value, "Docker-Distribution-API-Version": "registry/2.0"}

    def permits(self, caller: Caller, scope: Scope) -> bool:
        """Whether `caller` may do every action of `scope` (by its token, or by the policy). Blocking."""
        if caller.token_access is not None:
            return scope.actions <= caller.token_access.get((scope.type, scope.name), frozenset())
        return scope.actions <= self.allowed(caller.principal, scope)

    async def require(self, request: Request, scope: Scope, also: Sequence[Scope] = ()) -> Caller:
        """Authorise `scope` for this request or raise Unauthorized/Denied with a challenge.

        `also`: scopes the request can use but does not need (the source of a cross-repository
        mount); a challenge asks for them too, so a client that follows it gets a token that can.
        Binds the actor for the events the request records.
        """
        caller = await self.caller(request)
        if caller is None:
            raise _with_headers(Unauthorized("authentication required"), self.challenge(request, scope, also=also))
        if caller.token_access is not None:
            granted = caller.token_access.get((scope.type, scope.name), frozenset())
            if not scope.actions <= granted:
                raise _with_headers(Unauthorized("insufficient scope", {"scope": str(scope)}),
                                    self.challenge(request, scope, "insufficient_scope", also))
        else:
            granted = await read_in_thread(self.allowed, caller.principal, scope)
            if not scope.actions <= granted:
                if caller.principal.is_anonymous:
                    raise _with_headers(Unauthorized("authentication required"),
                                        self.challenge(request, scope, also=also))
                raise Denied(detail={"scope": str(scope)})
        self.bind(request, caller.principal)
        return caller

    async def require_login(self, request: Request) -> Principal:
        """Any valid credentials (the `/v2/` version check); anyone in auth mode `none`."""
        caller = await self.caller(request)
        if caller is not None and caller.principal.is_anonymous and await read_in_thread(self.mode) == "none":
            self.bind(request, caller.principal)
            return caller.principal
        if caller is None or caller.principal.is_anonymous:
            raise _with_headers(Unauthorized("authentication required"), self.challenge(request, None))
        self.bind(request, caller.principal)
        return caller.principal


def _with_headers(error: Exception, headers: dict[str, str]) -> Exception:
    error.headers = headers  # type: ignore[attr-defined]
    return error
