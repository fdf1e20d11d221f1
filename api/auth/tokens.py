"""The token service: registry JWTs and refresh tokens — issued, verified, re-checked, rotated.

Docker token auth (https://distribution.github.io/distribution/spec/auth/token/): a registry
JWT (ES256, `aud` = our service) grants requested ∩ allowed actions per scope, for
`token_ttl_seconds`. Verified tokens are cached (an ES256 verify costs ~120 µs of GIL time); every
RECHECK_SECONDS the cache reads again whether the principal still exists (user active, access
token usable) and what its grants allow under the current policy, so a revocation or a right
removed reaches tokens already issued within seconds.

Refresh tokens (OAuth2 `access_type=offline`) name a `RefreshTokenFamily` and a generation; each
use rotates the family (`commands.refresh_tokens`). `clock` (seconds since the epoch) decides
issue and expiry times: tests pass one they move.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.types import Options

from dockyard.api.auth.scopes import Scope
from dockyard.api.settings import Settings
from dockyard.commands.accounts import RECHECK_SECONDS, Accounts
from dockyard.commands.refresh_tokens import RefreshGrant, RefreshTokens
from dockyard.commands.secrets import key_id
from dockyard.domain import access
from dockyard.domain.access import ANONYMOUS, Principal
from dockyard.domain.actor import ANONYMOUS_NAME, Actor, current_actor
from dockyard.projections.identity_queries import IdentityQueries

REFRESH_TTL_SECONDS = 7 * 24 * 3600
# The `client_id` the docker CLI sends to the token endpoint; its identity token does not rotate
# (`domain.refresh_token`).
DOCKER_CLIENT_ID = "docker"
# RECHECK_SECONDS (from commands.accounts, where remembered Basic sign-ins follow it too): how long
# a verified registry JWT is trusted from the cache before its principal and grants are read again —
# the delay (per process) with which a revocation, deactivation or removed right reaches JWTs
# already issued, instead of their expiry.
__all__ = ["RECHECK_SECONDS", "REFRESH_TTL_SECONDS", "Caller", "TokenService"]
_MODE_CACHE_SECONDS = 1.0
# At most this many verified tokens are remembered per process (each entry holds the token, its
# claims and its caller: a few KiB). Past it, the expired ones go first, then the longest since
# verified or rechecked, down to 90 % of it: a bounded cache, no clear-all that would send every
# client back to an ES256 verify at once.
VERIFIED_TOKENS_MAX = 10_000

Grants = dict[tuple[str, str], frozenset[str]]


def _grants(access_claim: list[dict[str, Any]]) -> Grants:
    """A token's `access` claim as (type, name) -> actions (entries of one resource merged)."""
    grants: Grants = {}
    for entry in access_claim:
        k = (str(entry.get("type")), str(entry.get("name")))
        grants[k] = grants.get(k, frozenset()) | frozenset(entry.get("actions") or [])
    return grants


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request, and (for a bearer token) exactly what the token grants."""

    principal: Principal
    token_access: Grants | None = None


class TokenService:
    def __init__(self, settings: Settings, accounts: Accounts, identity_view: IdentityQueries,
                 key: ec.EllipticCurvePrivateKey, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.accounts = accounts
        self.identity_view = identity_view  # the auth mode; who may do what on a repository
        self.clock = clock
        self.refresh_tokens = RefreshTokens(accounts.registry, identity_view, accounts.directory_changed_since)
        self._key = key
        self._public = key.public_key()
        self._kid = key_id(key)
        self._issuer = settings.token_service
        # token: (exp, recheck at, caller, its claims as verified)
        self._verified: dict[str, tuple[float, float, Caller, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._mode: tuple[float, str] = (0.0, "managed")

    # -- the policy, per resource type ---------------------------------------------------------

    def mode(self) -> str:
        """The auth mode (`none`, `managed`, `ldap`), read from the log's read model at most once a second."""
        now = time.monotonic()
        if self._mode[0] < now:
            self._mode = (now + _MODE_CACHE_SECONDS, self.identity_view.auth_settings()["mode"])
        return self._mode[1]

    def allowed(self, principal: Principal, scope: Scope) -> frozenset[str]:
        """The actions of `scope` the principal may have. Blocking (reads the read model)."""
        return self._allowed(principal, scope)[0]

    def _allowed(self, principal: Principal, scope: Scope) -> tuple[frozenset[str], dict[str, Any] | None]:
        """`allowed`, and the principal's account as the same statement read it (None when none
        was read: anonymous, auth mode `none`, another scope type, no such user)."""
        if self.mode() == "none":
            return scope.actions, None
        if scope.type == "repository":
            account, facts = self.identity_view.policy_facts(principal.name, scope.name)
            return frozenset(access.allowed_actions(principal, scope.name, scope.actions, facts)), account
        if scope.type == "registry" and scope.name == "catalog" and access.may_list_catalog(principal):
            return scope.actions & {"*"}, None
        return frozenset(), None

    # -- registry tokens -----------------------------------------------------------------------

    def issue(self, principal: Principal, scopes: list[Scope]) -> dict[str, object]:
        """A registry token granting requested ∩ allowed actions. Blocking.

        The token goes into this process's cache of verified tokens as it is issued, when what
        the issue read confirms its principal (anonymous; or a password user whose account, read
        in the same statement as the policy, is active with the same role): its first use here
        then costs neither an ES256 verify nor a read of the user. It is checked again
        RECHECK_SECONDS after those reads, as a token verified then would be. A confirmed user's
        token also carries the role it was confirmed with (`role`), so that another process
        verifying it within RECHECK_SECONDS of `iat` need not read the user either."""
        read_at = self.clock()
        now = int(read_at)
        grants: list[dict[str, Any]] = []
        confirmed: bool | None = True if principal.is_anonymous else None
        for s in scopes:
            actions, account = self._allowed(principal, s)
            grants.append({"type": s.type, "name": s.name, "actions": sorted(actions)})
            if account is not None and principal.token_id is None and confirmed is not False:
                confirmed = bool(account["active"]) and account["role"] == principal.role
        claims: dict[str, object] = {
            "iss": self._issuer, "sub": principal.name or "", "aud": self.settings.token_service,
            "exp": now + self.settings.token_ttl_seconds, "nbf": now - 5, "iat": now,
            "jti": uuid.uuid4().hex, "access": grants,
        }
        if principal.token_id:
            claims["tid"] = principal.token_id
        if confirmed and not principal.is_anonymous:
            # The account as the issue read it (active, this role): until RECHECK_SECONDS after
            # `iat` every process takes it from here instead of reading the user again.
            claims["role"] = principal.role
        token = self._sign(claims)
        if confirmed:
            self._remember(token, float(now + self.settings.token_ttl_seconds), read_at + RECHECK_SECONDS,
                           Caller(principal, _grants(grants)), claims)
        return {
            "token": token, "access_token": token, "expires_in": self.settings.token_ttl_seconds,
            "issued_at": datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
        }

    def cached(self, token: str) -> tuple[bool, Caller | None]:
        """(hit, caller) from the cache of verified tokens, without blocking: a hit answers
        until the token's recheck time (None once it expired); a miss needs `verify`."""
        now = self.clock()
        with self._lock:
            hit = self._verified.get(token)
        if hit is None:
            return False, None
        expires, recheck_at, caller, _ = hit
        if expires <= now:
            return True, None
        return (True, caller) if now < recheck_at else (False, None)

    def verify(self, token: str) -> Caller | None:
        """The caller a registry JWT speaks for now, or None if it is invalid, expired or its
        principal is gone. Blocking (reads the read model); the result is cached.

        A token this process verified or issued before is not decoded again when its recheck
        comes (its bytes, so its signature and claims, are what they were): only its principal
        and grants are read again."""
        with self._lock:
            known = self._verified.get(token)
        if known is not None:
            claims: dict[str, Any] | None = known[3] if self._current(known[3]) else None
        else:
            claims = self._decode(token, self.settings.token_service, ("exp", "iat", "sub"))
        if claims is None:
            return None
        grants = _grants(claims.get("access") or [])
        # A token issued less than RECHECK_SECONDS ago carries the policy of its issue; it is
        # checked again RECHECK_SECONDS after it was issued. Older ones: grants ∩ policy now.
        now = self.clock()
        issued_at = float(claims["iat"]) if isinstance(claims["iat"], int | float) else 0.0
        fresh = now - RECHECK_SECONDS < issued_at <= now
        sub, role = claims.get("sub") or None, claims.get("role")
        if fresh and sub and isinstance(role, str) and not claims.get("tid"):
            principal: Principal | None = Principal(str(sub), role)  # as the issue read it (`issue`)
        else:
            principal = self._principal_of(sub, claims.get("tid"))
        if principal is not None and not fresh:
            grants = {(kind, name): self.allowed(principal, Scope(kind, name, actions))
                      for (kind, name), actions in grants.items()}
        if principal is None:
            with self._lock:
                self._verified.pop(token, None)
            return None
        caller = Caller(principal, grants)
        self._remember(token, float(claims["exp"]), (issued_at if fresh else now) + RECHECK_SECONDS, caller, claims)
        return caller

    def _remember(self, token: str, expires: float, recheck_at: float, caller: Caller,
                  claims: dict[str, Any]) -> None:
        """Answer `token` from the cache as `caller` until `recheck_at` (by `self.clock`); its
        `claims` (signature checked) serve its rechecks."""
        with self._lock:
            self._verified.pop(token, None)  # to the end: the dict's order is the order of (re)checks
            self._verified[token] = (expires, recheck_at, caller, claims)
            if len(self._verified) > VERIFIED_TOKENS_MAX:
                self._evict(self.clock())

    def _evict(self, now: float) -> None:
        """Drop the expired tokens, then the longest unchecked, down to 90 % of the bound. Holds `_lock`."""
        for token in [t for t, entry in self._verified.items() if entry[0] <= now]:
            del self._verified[token]
        excess = len(self._verified) - VERIFIED_TOKENS_MAX * 9 // 10
        for token in list(self._verified)[:max(excess, 0)]:
            del self._verified[token]

    # -- refresh tokens ------------------------------------------------------------------------

    def issue_refresh(self, principal: Principal, grant: RefreshGrant | None = None, *,
                      client_id: str | None = None) -> str:
        """A refresh token of `grant`'s family and generation; without one, of a new family,
        which rotates unless `client_id` is the docker CLI's (`DOCKER_CLIENT_ID`). Blocking."""
        if grant is None:
            grant = self.refresh_tokens.start(principal.name or "", principal.token_id,
                                              rotates=client_id != DOCKER_CLIENT_ID)
        now = int(self.clock())
        claims: dict[str, object] = {
            "iss": self._issuer, "sub": principal.name or "", "aud": self._issuer + "/refresh",
            "exp": now + REFRESH_TTL_SECONDS, "iat": now, "jti": uuid.uuid4().hex,
            "fam": grant.family_id, "gen": grant.generation,
        }
        if principal.token_id:
            claims["tid"] = principal.token_id
        return self._sign(claims)

    def refresh(self, token: str, address: str) -> tuple[Principal, str] | None:
        """Use a refresh token presented from `address`: its principal and the rotated refresh
        token, or None if it is invalid, expired, spent (which ends its family) or older than
        the user's credentials. Blocking; binds the actor in this thread's context."""
        claims = self._decode(token, self._issuer + "/refresh", ("exp", "sub", "fam", "gen"))
        if claims is None or not isinstance(claims["gen"], int):
            return None
        principal = self._principal_of(claims.get("sub") or None, claims.get("tid"))
        if principal is None or principal.is_anonymous:
            return None
        current_actor.set(Actor(principal.name or ANONYMOUS_NAME, address, principal.token_id))
        grant = self.refresh_tokens.rotate(principal.name or "", RefreshGrant(str(claims["fam"]), claims["gen"]))
        return None if grant is None else (principal, self.issue_refresh(principal, grant))

    # -- plumbing ------------------------------------------------------------------------------

    def _sign(self, claims: dict[str, object]) -> str:
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self._kid})

    def _decode(self, token: str, audience: str, required: tuple[str, ...]) -> dict[str, Any] | None:
        """The claims of a token we signed for `audience`, current by `self.clock`; else None."""
        try:
            # pyjwt would check `exp` and `nbf` against the system clock; `_current` checks them
            # against `self.clock`, so that a test can move time instead of waiting.
            options: Options = {"require": list(required), "verify_exp": False, "verify_nbf": False,
                                "verify_iat": False}
            claims = jwt.decode(token, self._public, algorithms=["ES256"], audience=audience, issuer=self._issuer,
                                options=options)
        except jwt.PyJWTError:
            return None
        return claims if self._current(claims) else None

    def _current(self, claims: dict[str, object]) -> bool:
        """Whether a token's `exp` is still ahead and its `nbf` (if any) reached, by `self.clock`."""
        now = self.clock()
        exp, nbf = claims.get("exp"), claims.get("nbf", now)
        if not isinstance(exp, int | float) or not isinstance(nbf, int | float):
            return False
        return now < exp and nbf <= now

    def _principal_of(self, sub: str | None, token_id: str | None) -> Principal | None:
        """The current principal behind a token's subject: anonymous for none, None if the user
        is gone or inactive or the access token it came from is no longer usable."""
        if not sub:
            return ANONYMOUS
        return self.accounts.principal_of(sub, token_id)
