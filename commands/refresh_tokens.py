"""Refresh-token families (`domain.refresh_token`): start one per offline sign-in, rotate it on
every use. The state is in the event log, so it holds after a restart and on every replica;
two uses of one token racing on two replicas are a version conflict, and the retry sees the
token spent — reuse, which ends the family. A directory (LDAP) user's family also ends when
their directory entry changed after it started (`directory_changed`): the directory's password
changes are no events of ours.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from dockyard.commands.registry import Registry
from dockyard.domain.refresh_token import DIRECTORY_CHANGED, RefreshTokenFamily
from dockyard.projections.identity_queries import IdentityQueries


@dataclass(frozen=True, slots=True)
class RefreshGrant:
    """What a refresh token carries besides its user: the family and the generation it is for."""

    family_id: str
    generation: int


class RefreshTokens:
    def __init__(self, registry: Registry, identity_view: IdentityQueries,
                 directory_changed: Callable[[str, datetime], bool] = lambda user, since: False) -> None:
        """`identity_view`: the credentials epoch a family is bound to; `directory_changed(user, since)`:
        whether `user`'s entry in an external directory changed at or after `since`
        (`Accounts.directory_changed_since`)."""
        self.registry = registry
        self.identity_view = identity_view
        self.directory_changed = directory_changed

    def start(self, user: str, token_id: str | None = None, *, rotates: bool = True) -> RefreshGrant:
        """A new family for `user` (signed in with access token `token_id`, if any); `rotates`
        False for the docker CLI's identity token (`domain.refresh_token`)."""
        family = RefreshTokenFamily(family_id=secrets.token_hex(16), user=user, token_id=token_id,
                                    credentials_epoch=self.identity_view.credentials_epoch(user),
                                    rotates=rotates)
        self.registry.save(family)
        return RefreshGrant(family.family_id, family.generation)

    def rotate(self, user: str, presented: RefreshGrant) -> RefreshGrant | None:
        """The grant for the next refresh token, or None if `presented` may not refresh: its
        family is unknown, ended, of another user or of older credentials, or the token was
        spent already (then the family ends, recorded as `RefreshTokenFamily.Ended`)."""

        def command() -> RefreshGrant | None:
            family = self.registry.load(RefreshTokenFamily,
                                        RefreshTokenFamily.create_id(presented.family_id, "", None, 0))
            if family is None or family.user != user:
                return None
            if not family.ended and self.directory_changed(user, family.created_on):
                family.end(DIRECTORY_CHANGED)
                self.registry.save(family)
                return None
            rotated = family.use(presented.generation, self.identity_view.credentials_epoch(user))
            if family.pending_events:
                self.registry.save(family)
            return RefreshGrant(family.family_id, family.generation) if rotated else None

        return self.registry.retrying(command)
