"""`?at=` on `/api/v0`: answering as of an instant, an RFC 3339 time or a log position.

`past(svc, at)` resolves `at` (a time: the last event recorded at or before it, by the audit
trail, which is first caught up to the log's head) and folds the read models up to that
position (`projections.as_of`); `past(svc, at, repository)` folds only what answers about
that repository (the audit trail, which finds those events, is given a moment to reach the
position; else the whole log is folded). A past answer is filtered by the access policy on the facts
of that instant: the caller sees a repository as of then when they could read it then.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Query

from dockyard.api.v0.deps import readable_repository
from dockyard.api.v2.common import Services
from dockyard.domain import access
from dockyard.domain.access import Principal
from dockyard.domain.errors import InvalidRequest, NotFound
from dockyard.projections.as_of import AsOf, PastState

FRESHNESS_WAIT = 2.0

At = Annotated[str | None, Query(description="Answer as of this instant: an RFC 3339 time "
                                             "(`2026-11-20T09:00:00Z`) or a log position.")]


def position_of(svc: Services, at: str) -> int:
    """The log position `at` names (a time: the last event recorded at or before it)."""
    head = svc.read_side.head()
    if at.isdigit():
        return min(int(at), head)
    try:
        moment = datetime.fromisoformat(at.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidRequest("at must be an RFC 3339 time or a log position", {"at": at}) from None
    svc.read_side.wait("audit", head, FRESHNESS_WAIT)
    return as_of(svc).position_at(moment)


def as_of(svc: Services) -> AsOf:
    registry = svc.registry
    return AsOf(registry, registry.datastore, registry.dialect)


def past(svc: Services, at: str, repository: str | None = None, accounts: tuple[str, ...] = ()) -> PastState:
    """The read models as of `at`: all of them, or (with `repository`) what answers about that
    repository and the access of `accounts` to it."""
    return scoped(svc, position_of(svc, at), repository, accounts)


def scoped(svc: Services, position: int, repository: str | None, accounts: tuple[str, ...] = ()) -> PastState:
    if repository is not None:
        svc.read_side.wait("audit", position, FRESHNESS_WAIT)
    return as_of(svc).at(position, repository, accounts)


def past_level(state: PastState, principal: Principal, repository: str) -> str:
    """The caller's level on `repository` as of `state` ('none' when it did not exist then)."""
    facts = state.identity_view.repository_facts(principal.name, repository)
    if not facts.exists:
        return "none"
    if principal.is_anonymous and principal.is_admin:  # auth mode `none`
        return "admin"
    return access.repository_level(principal, repository, facts)


def past_readable(state: PastState, principal: Principal, repository: str) -> str:
    level = past_level(state, principal, repository)
    if level == "none":
        raise NotFound("no such repository at that instant", {"repository": repository, "at": state.position})
    return level


def readable_views(svc: Services, principal: Principal, repository: str, at: str | None) -> Any:
    """The read models (`.registry_view`, `.identity_view`) to answer from: today's (`svc`) after
    the usual read check (`deps.readable_repository`), or those of instant `at` after the check on its facts."""
    if at is None:
        readable_repository(svc, principal, repository)
        return svc
    state = past(svc, at, repository)
    past_readable(state, principal, repository)
    return state
