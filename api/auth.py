"""Authentication and authorisation for `/v2/`: HTTP Basic and the Docker token flow.

The token flow (https://distribution.github.io/distribution/spec/auth/token/): a request
without valid credentials gets 401 with `WWW-Authenticate: Bearer realm=...,service=...,
scope=...`; the client asks the realm (`/auth/token`) for a JWT with Basic credentials and the
scopes it needs; the token grants requested ∩ allowed actions; the client retries with
`Authorization: Bearer <jwt>`. Verified tokens are cached until they expire (ES256 verify costs
~120 µs of GIL time per request otherwise).
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from dockyard.api.settings import Settings
from dockyard.api.token_keys import key_id
from dockyard.commands.accounts import Accounts
from dockyard.domain import access
from dockyard.domain.access import ANONYMOUS, Principal
from dockyard.domain.actor import ANONYMOUS as ANONYMOUS_NAME
from dockyard.domain.actor import Actor, current_actor
from dockyard.domain.errors import Denied, Unauthorized


@dataclass(frozen=True, slots=True)
class Scope:
    type: str
    name: str
    actions: frozenset[str]

    @classmethod
    def parse(cls, text: str) -> Scope | None:
        """`repository:engineering/barca:pull,push` -> Scope; None if malformed."""
        try:
            kind, rest = text.split(":", 1)
            name, actions = rest.rsplit(":", 1)
        except ValueError:
            return None
        kind = kind.split("(", 1)[0]  # `repository(plugin)` is a repository
        return cls(kind, name, frozenset(a for a in actions.split(",") if a))

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request, and (for a bearer token) exactly what the token grants."""

    principal: Principal
    token_access: dict[tuple[str, str], frozenset[str]] | None = None


class Auth:
    def __init__(self, settings: Settings, accounts: Accounts, key: ec.EllipticCurvePrivateKey) -> None:
        self.settings = settings
        self.accounts = accounts
        self._key = key
        self._public = key.public_key()
        self._kid = key_id(key)
        self._issuer = settings.token_service
        self._verified: dict[str, tuple[float, Caller]] = {}
        self._lock = threading.Lock()

    # -- tokens --------------------------------------------------------------------------------

    def allowed(self, principal: Principal, scope: Scope) -> frozenset[str]:
        """The actions of `scope` the principal may have (the policy, per resource type)."""
        if scope.type == "repository":
            facts = self.accounts.registry.identity.repository_facts(principal.name, scope.name)
            return frozenset(access.allowed_actions(principal, scope.name, scope.actions, facts))
        if scope.type == "registry" and scope.name == "catalog" and access.may_list_catalog(principal):
            return scope.actions & {"*"}
        return frozenset()

    def issue(self, principal: Principal, scopes: list[Scope]) -> dict[str, object]:
        now = int(time.time())
        grants = []
        for scope in scopes:
            actions = self.allowed(principal, scope)
            grants.append({"type": scope.type, "name": scope.name, "actions": sorted(actions)})
        claims = {
            "iss": self._issuer, "sub": principal.name or "", "aud": self.settings.token_service,
            "exp": now + self.settings.token_ttl_seconds, "nbf": now - 5, "iat": now,
            "jti": uuid.uuid4().hex, "access": grants,
        }
        token = jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self._kid})
        return {
            "token": token, "access_token": token, "expires_in": self.settings.token_ttl_seconds,
            "issued_at": datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
        }

    async def verify(self, token: str) -> Caller | None:
        """The caller a bearer token speaks for, or None if it is invalid or expired."""
        with self._lock:
            hit = self._verified.get(token)
        if hit is not None:
            return hit[1] if hit[0] > time.time() else None
        return await run_in_threadpool(self._verify, token)

    def _verify(self, token: str) -> Caller | None:
        try:
            claims = jwt.decode(token, self._public, algorithms=["ES256"], audience=self.settings.token_service,
                                issuer=self._issuer, options={"require": ["exp", "iat", "sub"]})
        except jwt.PyJWTError:
            return None
        grants: dict[tuple[str, str], frozenset[str]] = {}
        for entry in claims.get("access") or []:
            k = (str(entry.get("type")), str(entry.get("name")))
            grants[k] = grants.get(k, frozenset()) | frozenset(entry.get("actions") or [])
        # Grants are fixed at issue time, for the token's short life (as in Distribution); the
        # role is read once per token, for what a token cannot carry (catalog filtering).
        sub = claims.get("sub") or None
        row = self.accounts.registry.identity.user(sub) if sub else None
        principal = Principal(sub, row["role"] if row and row["active"] else "none") if sub else ANONYMOUS
        caller = Caller(principal, grants)
        with self._lock:
            if len(self._verified) > 50_000:
                self._verified.clear()
            self._verified[token] = (float(claims["exp"]), caller)
        return caller

    # -- requests ------------------------------------------------------------------------------

    def realm(self, request: Request) -> str:
        base = self.settings.public_url or str(request.base_url).rstrip("/")
        return base.rstrip("/") + "/auth/token"

    def challenge(self, request: Request, scope: Scope | None, error: str | None = None) -> dict[str, str]:
        value = f'Bearer realm="{self.realm(request)}",service="{self.settings.token_service}"'
        if scope is not None:
            value += f',scope="{scope}"'
        if error:
            value += f',error="{error}"'
        return {"WWW-Authenticate": value, "Docker-Distribution-API-Version": "registry/2.0"}

    async def caller(self, request: Request) -> Caller | None:
        """Who is calling: a Caller, ANONYMOUS without credentials, None for bad credentials."""
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            return await self.verify(value.strip())
        if scheme == "basic":
            principal = await self._basic(value.strip())
            return Caller(principal) if principal else None
        return Caller(ANONYMOUS)

    async def _basic(self, value: str) -> Principal | None:
        try:
            name, _, password = base64.b64decode(value).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return await run_in_threadpool(self.accounts.authenticate, name, password)

    def _bind(self, request: Request, principal: Principal) -> None:
        host = request.client.host if request.client else "unknown"
        current_actor.set(Actor(principal.name or ANONYMOUS_NAME, host))

    def permits(self, caller: Caller, scope: Scope) -> bool:
        """Whether `caller` may do every action of `scope` (by its token, or by the policy)."""
        if caller.token_access is not None:
            return scope.actions <= caller.token_access.get((scope.type, scope.name), frozenset())
        return scope.actions <= self.allowed(caller.principal, scope)

    async def require(self, request: Request, scope: Scope) -> Caller:
        """Authorise `scope` for this request or raise Unauthorized/Denied with a challenge.

        Binds the actor for the events the request records.
        """
        caller = await self.caller(request)
        if caller is None:
            raise _with_headers(Unauthorized("authentication required"), self.challenge(request, scope))
        if caller.token_access is not None:
            granted = caller.token_access.get((scope.type, scope.name), frozenset())
            if not scope.actions <= granted:
                raise _with_headers(Unauthorized("insufficient scope", {"scope": str(scope)}),
                                    self.challenge(request, scope, "insufficient_scope"))
        else:
            granted = await run_in_threadpool(self.allowed, caller.principal, scope)
            if not scope.actions <= granted:
                if caller.principal.is_anonymous:
                    raise _with_headers(Unauthorized("authentication required"), self.challenge(request, scope))
                raise Denied(detail={"scope": str(scope)})
        self._bind(request, caller.principal)
        return caller

    async def require_login(self, request: Request) -> Principal:
        """Any valid credentials (the `/v2/` version check)."""
        caller = await self.caller(request)
        if caller is None or caller.principal.is_anonymous:
            raise _with_headers(Unauthorized("authentication required"), self.challenge(request, None))
        self._bind(request, caller.principal)
        return caller.principal

    # -- the token endpoint --------------------------------------------------------------------

    async def token_endpoint(self, request: Request) -> Response:
        """GET /auth/token?service=...&scope=... with optional Basic credentials."""
        header = request.headers.get("authorization", "")
        principal: Principal | None = ANONYMOUS
        if header.lower().startswith("basic "):
            principal = await self._basic(header[6:].strip())
            if principal is None:
                body = {"errors": [{"code": "UNAUTHORIZED", "message": "invalid username or password",
                                    "detail": None}]}
                return Response(orjson.dumps(body), status_code=401, media_type="application/json")
        scopes = [s for s in (Scope.parse(x) for x in request.query_params.getlist("scope")) if s]
        issued = await run_in_threadpool(self.issue, principal, scopes)
        return Response(orjson.dumps(issued), media_type="application/json")


def _with_headers(error: Exception, headers: dict[str, str]) -> Exception:
    error.headers = headers  # type: ignore[attr-defined]
    return error
