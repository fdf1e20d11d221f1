"""Access tokens: named, expiring credentials a user makes for CI and scripts (Harbor's robot
accounts, Quay's app tokens). The secret is shown once; only its sha256 is kept."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.domain import event

from dockyard.domain.access import Principal
from dockyard.domain.aggregate import RegistryAggregate, name_id
from dockyard.domain.errors import Denied, InvalidRequest

TOKEN_LEVELS = ("read-only", "read-write", "admin")


def check_token_level(level: str) -> str:
    if level not in TOKEN_LEVELS:
        raise InvalidRequest(f"scope must be one of {', '.join(TOKEN_LEVELS)}", {"scope": level})
    return level


def is_usable(owner: str, revoked: bool, expires_at: str | None, user: str, now: datetime) -> bool:
    """The one validity rule of an access token presented for `user` at `now`: it is that user's,
    not revoked, and not expired (`expires_at`, ISO 8601, is the first instant it is not valid)."""
    if owner != user or revoked:
        return False
    return expires_at is None or datetime.fromisoformat(expires_at) > now


def check_may_create_tokens(principal: Principal, owner: str) -> None:
    """Only the user themself makes their tokens, signed in with a password: a token never
    mints tokens (a leaked one would otherwise outlive its own revocation)."""
    if principal.name != owner:
        raise Denied("only the user themself may create their access tokens", {"user": owner})
    _check_password_sign_in(principal)


def check_may_manage_tokens(principal: Principal, owner: str) -> None:
    """Listing and revoking `owner`'s tokens: the user or a global admin, signed in with a
    password. An access token — whatever its scope — cannot see or revoke its siblings."""
    if not principal.is_admin and principal.name != owner:
        raise Denied("only the user themself or a global admin may manage access tokens", {"user": owner})
    _check_password_sign_in(principal)


def _check_password_sign_in(principal: Principal) -> None:
    if principal.token_id is not None:
        raise Denied("sign in with a password, not an access token, to manage access tokens")


class AccessToken(RegistryAggregate):
    """`level` caps what the token may do; `repositories` (empty = all) limits where.

    What it may do is always also limited by its user's own access at the time of use.
    """

    TOPIC = "dockyard.AccessToken"

    if TYPE_CHECKING:  # the event classes `@event` makes at run time (fields: the method's)
        class Created(RegistryAggregate.Created):
            token_id: str
            user: str
            name: str
            secret_hash: str
            expires_at: str | None
            level: str
            repositories: list[str]

        class Revoked(RegistryAggregate.Event):
            token_id: str
            user: str

    @staticmethod
    def create_id(token_id: str, user: str, name: str, secret_hash: str, expires_at: str | None,
                  level: str, repositories: list[str]) -> UUID:
        return name_id("access-token", token_id)

    @event("Created", topic="dockyard.AccessToken.Created")
    def __init__(self, token_id: str, user: str, name: str, secret_hash: str, expires_at: str | None,
                 level: str, repositories: list[str]) -> None:
        self.token_id = token_id
        self.user = user
        self.name = name
        self.secret_hash = secret_hash
        self.expires_at = expires_at
        self.level = level
        self.repositories = list(repositories)
        self.revoked = False

    @event("Revoked", topic="dockyard.AccessToken.Revoked")
    def _revoked(self, token_id: str, user: str) -> None:
        self.revoked = True

    def revoke(self) -> None:
        if not self.revoked:
            self._revoked(self.token_id, self.user)
