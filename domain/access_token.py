"""Access tokens: named, expiring credentials a user makes for CI and scripts (Harbor's robot
accounts, Quay's app tokens). The secret is shown once; only its sha256 is kept."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import event

from dockyard.domain.aggregate import RegistryAggregate, name_id
from dockyard.domain.errors import InvalidRequest

TOKEN_LEVELS = ("read-only", "read-write", "admin")


def check_token_level(level: str) -> str:
    if level not in TOKEN_LEVELS:
        raise InvalidRequest(f"scope must be one of {', '.join(TOKEN_LEVELS)}", {"scope": level})
    return level


class AccessToken(RegistryAggregate):
    """`level` caps what the token may do; `repositories` (empty = all) limits where.

    What it may do is always also limited by its user's own access at the time of use.
    """

    TOPIC = "dockyard.AccessToken"

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
