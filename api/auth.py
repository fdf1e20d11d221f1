"""Authentication and authorisation for `/v2/`: HTTP Basic and the Docker token flow.

The token flow (https://distribution.github.io/distribution/spec/auth/token/): a request
without valid credentials gets 401 with `WWW-Authenticate: Bearer realm=...,service=...,
scope=...`; the client asks the realm (`/auth/token`) for a JWT — GET with Basic credentials,
or the OAuth2 form POST (password or refresh_token grant) — for the scopes it needs; the token
grants requested ∩ allowed actions; the client retries with `Authorization: Bearer <jwt>`.
Verified tokens are cached until they expire (ES256 verify costs ~120 µs of GIL time).

Auth mode `none` (DTR's "None") lets every caller do everything.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from dockyard.api.secret_store import key_id
from dockyard.api.settings import Settings
from dockyard.commands.accounts import Accounts
from dockyard.commands.refresh_tokens import RefreshGrant, RefreshTokens
from dockyard.domain import access
from dockyard.domain.access import ANONYMOUS, Principal
from dockyard.domain.actor import ANONYMOUS as ANONYMOUS_NAME
from dockyard.domain.actor import Actor, current_actor
from dockyard.domain.errors import Denied, DomainError, Unauthorized

REFRESH_TTL_SECONDS = 7 * 24 * 3600
# How long a verified registry JWT is trusted from the cache before its user and access token are
# read again: the delay (per process) with which a revocation or deactivation reaches JWTs already
# issued, instead of their expiry.
RECHECK_SECONDS = 5.0
_MODE_CACHE_SECONDS = 1.0


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


def parse_scopes(values: list[str]) -> list[Scope]:
    """Scopes from query or form values; one value may hold several, space-separated (OAuth2)."""
    return [s for value in values for part in value.split() if (s := Scope.parse(part))]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request, and (for a bearer token) exactly what the token grants."""

    principal: Principal
    token_access: dict[tuple[str, str], frozenset[str]] | None = None


# pyjwt would check `exp` and `nbf` against the system clock; `Auth._current` checks them against
# `Auth.clock`, so that a test can move time instead of waiting.
_DECODE_OPTIONS = {"verify_exp": False, "verify_nbf": False, "verify_iat": False}


class Auth:
    """`clock` (seconds since the epoch) is when tokens are issued and when they expire."""

    def __init__(self, settings: Settings, accounts: Accounts, key: ec.EllipticCurvePrivateKey,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.accounts = accounts
        self._key = key
        self._public = key.public_key()
        self._kid = key_id(key)
        self._issuer = settings.token_service
        self._verified: dict[str, tuple[float, float, Caller]] = {}  # token: (exp, recheck at, caller)
        self._lock = threading.Lock()
        self._mode: tuple[float, str] = (0.0, "managed")
        self.refresh_tokens = RefreshTokens(accounts.registry)

    # -- the policy, per resource type ---------------------------------------------------------

    def mode(self) -> str:
        """The auth mode (`none`, `managed`, `ldap`), read from the log's read model at most once a second."""
        now = time.monotonic()
        if self._mode[0] < now:
            self._mode = (now + _MODE_CACHE_SECONDS, self.accounts.registry.identity.auth_settings()["mode"])
        return self._mode[1]

    def allowed(self, principal: Principal, scope: Scope) -> frozenset[str]:
        """The actions of `scope` the principal may have. Blocking (reads the read model)."""
        if self.mode() == "none":
            return scope.actions
        if scope.type == "repository":
            facts = self.accounts.registry.identity.repository_facts(principal.name, scope.name)
            return frozenset(access.allowed_actions(principal, scope.name, scope.actions, facts))
        if scope.type == "registry" and scope.name == "catalog" and access.may_list_catalog(principal):
            return scope.actions & {"*"}
        return frozenset()

    # -- tokens --------------------------------------------------------------------------------

    def _sign(self, claims: dict[str, object]) -> str:
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self._kid})

    def issue(self, principal: Principal, scopes: list[Scope]) -> dict[str, object]:
        """A registry token granting requested ∩ allowed actions. Blocking."""
        now = int(self.clock())
        grants = [{"type": s.type, "name": s.name, "actions": sorted(self.allowed(principal, s))} for s in scopes]
        claims = {
            "iss": self._issuer, "sub": principal.name or "", "aud": self.settings.token_service,
            "exp": now + self.settings.token_ttl_seconds, "nbf": now - 5, "iat": now,
            "jti": uuid.uuid4().hex, "access": grants,
        }
        if principal.token_id:
            claims["tid"] = principal.token_id
        token = self._sign(claims)
        return {
            "token": token, "access_token": token, "expires_in": self.settings.token_ttl_seconds,
            "issued_at": datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
        }

    def issue_refresh(self, principal: Principal, grant: RefreshGrant | None = None) -> str:
        """A refresh token of `grant`'s family and generation (a new family without one). Blocking."""
        if grant is None:
            grant = self.refresh_tokens.start(principal.name or "", principal.token_id)
        now = int(self.clock())
        claims = {"iss": self._issuer, "sub": principal.name or "", "aud": self._issuer + "/refresh",
                  "exp": now + REFRESH_TTL_SECONDS, "iat": now, "jti": uuid.uuid4().hex,
                  "fam": grant.family_id, "gen": grant.generation}
        if principal.token_id:
            claims["tid"] = principal.token_id
        return self._sign(claims)

    def _principal_of(self, sub: str | None, token_id: str | None) -> Principal | None:
        """The current principal behind a token's subject (None if the user is gone or inactive)."""
        if not sub:
            return ANONYMOUS
        row = self.accounts.registry.identity.user(sub)
        if row is None or not row["active"]:
            return None
        if token_id:
            token = self.accounts.registry.identity.access_token(token_id)
            if token is None or token["revoked"] or token["owner"] != sub or (
                    token["expires_at"] and datetime.fromisoformat(token["expires_at"]) <= datetime.fromtimestamp(self.clock(), UTC)):
                return None  # revoked or expired: so are the refresh tokens it got
            return Principal(sub, row["role"], token_id=token_id, token_level=token["level"],
                             token_repositories=tuple(token["repositories"]))
        return Principal(sub, row["role"])

    async def verify(self, token: str) -> Caller | None:
        """The caller a bearer token speaks for, or None if it is invalid or expired."""
        now = self.clock()
        with self._lock:
            hit = self._verified.get(token)
        if hit is not None:
            expires, recheck_at, caller = hit
            if expires <= now:
                return None
            if now < recheck_at:
                return caller
        return await run_in_threadpool(self._verify, token)

    def _verify(self, token: str) -> Caller | None:
        try:
            claims = jwt.decode(token, self._public, algorithms=["ES256"], audience=self.settings.token_service,
                                issuer=self._issuer, options={"require": ["exp", "iat", "sub"], **_DECODE_OPTIONS})
        except jwt.PyJWTError:
            return None
        if not self._current(claims):
            return None
        grants: dict[tuple[str, str], frozenset[str]] = {}
        for entry in claims.get("access") or []:
            k = (str(entry.get("type")), str(entry.get("name")))
            grants[k] = grants.get(k, frozenset()) | frozenset(entry.get("actions") or [])
        # The principal (the user still active, the access token it came from not revoked) and
        # what the grants allow under the current policy are read again every RECHECK_SECONDS,
        # so a revocation or a right removed reaches JWTs already handed out within seconds. A
        # token issued less than RECHECK_SECONDS ago carries the policy of its issue: its grants
        # are checked again RECHECK_SECONDS after it was issued.
        principal = self._principal_of(claims.get("sub") or None, claims.get("tid"))
        now = self.clock()
        issued_at = float(claims["iat"]) if isinstance(claims["iat"], int | float) else 0.0
        fresh = now - RECHECK_SECONDS < issued_at <= now
        if principal is not None and not fresh:
            grants = self._still_allowed(principal, grants)
        with self._lock:
            if principal is None:
                self._verified.pop(token, None)
                return None
            if len(self._verified) > 50_000:
                self._verified.clear()
            caller = Caller(principal, grants)
            self._verified[token] = (float(claims["exp"]), (issued_at if fresh else now) + RECHECK_SECONDS, caller)
        return caller

    def _still_allowed(self, principal: Principal,
                       grants: dict[tuple[str, str], frozenset[str]]) -> dict[tuple[str, str], frozenset[str]]:
        """`grants` intersected with what the policy allows `principal` now. Blocking."""
        return {(kind, name): self.allowed(principal, Scope(kind, name, actions))
                for (kind, name), actions in grants.items()}

    def _current(self, claims: dict[str, object]) -> bool:
        """Whether a token's `exp` is still ahead and its `nbf` (if any) reached, by `self.clock`."""
        now = self.clock()
        exp, nbf = claims.get("exp"), claims.get("nbf", now)
        if not isinstance(exp, int | float) or not isinstance(nbf, int | float):
            return False
        return now < exp and nbf <= now

    # -- requests ------------------------------------------------------------------------------

    def realm(self, request: Request) -> str:
        base = self.settings.public_url or str(request.base_url).rstrip("/")
        return base.rstrip("/") + "/auth/token"

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

    async def caller(self, request: Request) -> Caller | None:
        """Who is calling: a Caller, ANONYMOUS without credentials, None for bad credentials."""
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            return await self.verify(value.strip())
        if scheme == "basic":
            principal = await self._basic(value.strip(), client_address(request))
            return Caller(principal) if principal else None
        return Caller(ANONYMOUS)

    async def _basic(self, value: str, address: str) -> Principal | None:
        try:
            name, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return await run_in_threadpool(self.accounts.authenticate, name, password, address)

    def bind(self, request: Request, principal: Principal) -> None:
        """Attribute the events this request records to `principal` (and its access token)."""
        current_actor.set(Actor(principal.name or ANONYMOUS_NAME, client_address(request), principal.token_id))

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
            granted = await run_in_threadpool(self.allowed, caller.principal, scope)
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
        if caller is not None and caller.principal.is_anonymous and await run_in_threadpool(self.mode) == "none":
            self.bind(request, caller.principal)
            return caller.principal
        if caller is None or caller.principal.is_anonymous:
            raise _with_headers(Unauthorized("authentication required"), self.challenge(request, None))
        self.bind(request, caller.principal)
        return caller.principal

    # -- the token endpoint --------------------------------------------------------------------

    async def token_endpoint(self, request: Request) -> Response:
        """GET /auth/token?service=...&scope=... with optional Basic credentials (Docker token spec)."""
        if (refused := self._foreign_service(request.query_params.get("service"))) is not None:
            return refused
        header = request.headers.get("authorization", "")
        principal: Principal | None = ANONYMOUS
        if header.lower().startswith("basic "):
            principal = await self._basic(header[6:].strip(), client_address(request))
            if principal is None:
                return _token_error(401, "UNAUTHORIZED", "invalid username or password")
        scopes = parse_scopes(request.query_params.getlist("scope"))
        issued = await run_in_threadpool(self.issue, principal, scopes)
        self.bind(request, principal)
        if request.query_params.get("offline_token") == "true" and not principal.is_anonymous:
            issued["refresh_token"] = await run_in_threadpool(self.issue_refresh, principal)
        return Response(orjson.dumps(issued), media_type="application/json")

    async def oauth_token_endpoint(self, request: Request) -> Response:
        """POST /auth/token, the OAuth2 form (Docker token spec, "oauth"): grant_type `password`
        (username, password) or `refresh_token`; `access_type=offline` returns a refresh token."""
        form = await request.form()
        service = form.get("service")
        if (refused := self._foreign_service(None if service is None else str(service))) is not None:
            return refused
        grant = str(form.get("grant_type") or "")
        scopes = parse_scopes([str(v) for v in form.getlist("scope")])
        if grant == "password":
            name, password = str(form.get("username") or ""), str(form.get("password") or "")
            try:
                principal = await run_in_threadpool(self.accounts.authenticate, name, password, client_address(request))
            except DomainError:
                return _token_error(429, "TOOMANYREQUESTS", "too many failed logins")
            if principal is None:
                return _token_error(401, "UNAUTHORIZED", "invalid username or password")
        elif grant == "refresh_token":
            refreshed = await run_in_threadpool(self._refresh, str(form.get("refresh_token") or ""),
                                                client_address(request))
            if refreshed is None:
                return _token_error(401, "UNAUTHORIZED", "invalid refresh token")
            principal, next_refresh = refreshed
        else:
            return _token_error(400, "UNSUPPORTED", "grant_type must be password or refresh_token")
        issued = await run_in_threadpool(self.issue, principal, scopes)
        self.bind(request, principal)
        body = {"access_token": issued["access_token"], "expires_in": issued["expires_in"],
                "issued_at": issued["issued_at"], "scope": " ".join(str(s) for s in scopes)}
        if grant == "refresh_token":
            body["refresh_token"] = next_refresh
        elif form.get("access_type") == "offline":
            body["refresh_token"] = await run_in_threadpool(self.issue_refresh, principal)
        return Response(orjson.dumps(body), media_type="application/json")

    def _foreign_service(self, service: str | None) -> Response | None:
        """A 400 for a token request naming another service: a token this endpoint signs is
        only good for its own (`aud`), so one for another registry would be useless or misused."""
        if service is None or service == self.settings.token_service:
            return None
        return _token_error(400, "UNSUPPORTED", f"this token service is {self.settings.token_service!r}; "
                            f"it issues no tokens for service {service!r}")

    def _refresh(self, token: str, address: str) -> tuple[Principal, str] | None:
        """Use a refresh token: its principal and the rotated refresh token, or None if it is
        invalid, expired, spent (which ends its family) or older than the user's credentials."""
        try:
            claims = jwt.decode(token, self._public, algorithms=["ES256"], audience=self._issuer + "/refresh",
                                issuer=self._issuer, options={"require": ["exp", "sub", "fam", "gen"], **_DECODE_OPTIONS})
        except jwt.PyJWTError:
            return None
        if not self._current(claims):
            return None
        principal = self._principal_of(claims.get("sub") or None, claims.get("tid"))
        if principal is None or principal.is_anonymous or not isinstance(claims["gen"], int):
            return None
        current_actor.set(Actor(principal.name or ANONYMOUS_NAME, address, principal.token_id))  # this thread's
        grant = self.refresh_tokens.rotate(principal.name or "", RefreshGrant(str(claims["fam"]), claims["gen"]))
        return None if grant is None else (principal, self.issue_refresh(principal, grant))


def client_address(request: Request) -> str:
    """The client's IP address, as events record it."""
    return request.client.host if request.client else "unknown"


def _token_error(status: int, code: str, message: str) -> Response:
    body = {"errors": [{"code": code, "message": message, "detail": None}]}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _with_headers(error: Exception, headers: dict[str, str]) -> Exception:
    error.headers = headers  # type: ignore[attr-defined]
    return error
