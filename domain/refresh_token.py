"""Refresh-token families: one per offline sign-in (OAuth2 `access_type=offline`).

A refresh token names its family and the generation it was issued at. Each use rotates the
family (the next generation gets a new token, the presented one is spent); a spent token
presented again means two parties hold the family's tokens — one of them a thief — so the whole
family ends (OAuth 2.0 Security BCP, refresh token rotation). The family also remembers the
user's credentials epoch when it started: a password change, deactivation or role change moves
the epoch on (`projections.identity_view`), and no family of an older epoch refreshes again.

A family started by the docker CLI (`client_id=docker`) does not rotate: `docker login` keeps
the first refresh token as its "identity token" and presents that same token for every later
command, never storing the one a refresh answers with (so with rotation only the first command
after a login would work). Such a family keeps its one token — ending, like every family, with
the user's credentials epoch, the access token it came from, or its expiry — and gives up reuse
detection, as Docker Hub's identity tokens do. Claiming to be docker gains a client nothing but
that: the family is still its own sign-in's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.domain import event

from dockyard.domain.aggregate import RegistryAggregate, name_id

REUSE = "reuse"
DIRECTORY_CHANGED = "directory-changed"  # its LDAP user's entry changed after the family started


class RefreshTokenFamily(RegistryAggregate):
    TOPIC = "dockyard.RefreshTokenFamily"

    if TYPE_CHECKING:  # the event classes `@event` makes at run time (fields: the method's)
        class Created(RegistryAggregate.Created):
            family_id: str
            user: str
            token_id: str | None
            credentials_epoch: int

        class Rotated(RegistryAggregate.Event):
            family_id: str
            user: str
            generation: int

        class Ended(RegistryAggregate.Event):
            family_id: str
            user: str
            reason: str

    @staticmethod
    def create_id(family_id: str, user: str, token_id: str | None, credentials_epoch: int) -> UUID:
        return name_id("refresh-token-family", family_id)

    @event("Created", topic="dockyard.RefreshTokenFamily.Created")
    def __init__(self, family_id: str, user: str, token_id: str | None, credentials_epoch: int,
                 rotates: bool = True) -> None:
        """`token_id`: the access token the sign-in used, if any (the family dies with it).
        `rotates`: False for a docker identity token (see the module docstring); events stored
        before the field existed replay as rotating families."""
        self.family_id = family_id
        self.rotates = rotates
        self.user = user
        self.token_id = token_id
        self.credentials_epoch = credentials_epoch
        self.generation = 0
        self.ended = False

    @event("Rotated", topic="dockyard.RefreshTokenFamily.Rotated")
    def _rotated(self, family_id: str, user: str, generation: int) -> None:
        self.generation = generation

    @event("Ended", topic="dockyard.RefreshTokenFamily.Ended")
    def _ended(self, family_id: str, user: str, reason: str) -> None:
        self.ended = True

    def end(self, reason: str) -> None:
        """End the family for `reason` (no token of it refreshes again); nothing if ended."""
        if not self.ended:
            self._ended(self.family_id, self.user, reason)

    def use(self, generation: int, credentials_epoch: int) -> bool:
        """Present the family's token of `generation` while the user's credentials are at
        `credentials_epoch`. True: the family rotated to the next generation (issue its token;
        a family that does not rotate stays at its generation).
        False: refused — ended, from older credentials, or a spent token (which ends the family)."""
        if self.ended or credentials_epoch != self.credentials_epoch:
            return False
        if not self.rotates:
            return generation == self.generation  # its one token, used again and again
        if generation != self.generation:
            self._ended(self.family_id, self.user, REUSE)
            return False
        self._rotated(self.family_id, self.user, self.generation + 1)
        return True
