"""Access tokens: create (the secret is returned once), list, revoke, and check a presented one.

A token is presented as the password, with the owner's user name: `dyt_<id>_<secret>`. Only
sha256(secret) is stored — the secret has 256 bits of entropy, so a slow hash buys nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dockyard.commands.registry import Registry
from dockyard.domain.access import Principal
from dockyard.domain.access_token import (
    AccessToken,
    check_may_create_tokens,
    check_may_manage_tokens,
    check_token_level,
    is_usable,
)
from dockyard.domain.errors import InvalidRequest, NotFound
from dockyard.domain.names import check_repository_name
from dockyard.projections.identity_queries import IdentityQueries

PREFIX = "dyt_"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token_id: str
    secret: str  # the whole presentable token, shown once


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class AccessTokens:
    """`clock` (seconds since the epoch) decides what has expired: tests pass one they move."""

    def __init__(self, registry: Registry, identity_view: IdentityQueries,
                 clock: Callable[[], float] = time.time) -> None:
        self.registry = registry
        self.identity_view = identity_view
        self.clock = clock

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def create(self, user: str, name: str, level: str, expires_at: datetime | None,
               repositories: list[str], by: Principal | None = None) -> IssuedToken:
        """A new token of `user`. `by`: who asks (None: an admin verb, which may)."""
        if by is not None:
            check_may_create_tokens(by, user)
        if self.identity_view.user(user) is None:
            raise NotFound("no such user", {"user": user})
        if not name or len(name) > 100:
            raise InvalidRequest("a token needs a name of 1 to 100 characters")
        check_token_level(level)
        for repository in repositories:
            check_repository_name(repository)
        if expires_at is not None:
            if expires_at.tzinfo is None:
                expires_at = expires_at.replace(tzinfo=UTC)
            if expires_at <= self.now():
                raise InvalidRequest("expiresAt is in the past")
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        self.registry.save(AccessToken(
            token_id=token_id, user=user, name=name, secret_hash=_hash(secret),
            expires_at=expires_at.isoformat() if expires_at else None, level=level,
            repositories=sorted(set(repositories))))
        return IssuedToken(token_id, f"{PREFIX}{token_id}_{secret}")

    def list_tokens(self, user: str, by: Principal | None = None) -> list[dict[str, Any]]:
        """`user`'s tokens, without secrets. `by`: who asks (None: an admin verb, which may)."""
        if by is not None:
            check_may_manage_tokens(by, user)
        if self.identity_view.user(user) is None:
            raise NotFound("no such user", {"user": user})
        return self.identity_view.access_tokens(user)

    def revoke(self, user: str, token_id: str, by: Principal | None = None) -> None:
        """Revoke a token of `user`. `by`: who asks (None: an admin verb, which may)."""
        if by is not None:
            check_may_manage_tokens(by, user)

        def command() -> None:
            token = self.registry.load(AccessToken, AccessToken.create_id(token_id, "", "", "", None, "", []))
            if token is None or token.user != user:
                raise NotFound("no such token", {"id": token_id})
            token.revoke()
            self.registry.save(token)

        self.registry.retrying(command)

    def owner_of(self, presented: str) -> str | None:
        """The user a presented `dyt_<id>_<secret>` token was made for (by its id; not verified)."""
        if not presented.startswith(PREFIX):
            return None
        row = self.identity_view.access_token(presented[len(PREFIX):].partition("_")[0])
        return row["owner"] if row else None

    def usable(self, token_id: str, user: str) -> dict[str, Any] | None:
        """The token row if token `token_id` is usable for `user` now (`domain.access_token.is_usable`):
        the one check for a token presented as a password and for one named in a registry JWT."""
        row = self.identity_view.access_token(token_id)
        if row is None or not is_usable(row["owner"], bool(row["revoked"]), row["expires_at"], user, self.now()):
            return None
        return row

    def check(self, user: str, presented: str) -> dict[str, Any] | None:
        """The token row if `presented` is a usable token of `user` with the right secret, else None."""
        if not presented.startswith(PREFIX):
            return None
        token_id, _, secret = presented[len(PREFIX):].partition("_")
        row = self.usable(token_id, user)
        if row is None or not hmac.compare_digest(row["secret_hash"], _hash(secret)):
            return None
        return row


def is_access_token(password: str) -> bool:
    return password.startswith(PREFIX)
