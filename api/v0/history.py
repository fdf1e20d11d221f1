"""A repository's past, read from the audit trail: a tag's history (every digest it pointed
at, when, by whom, from where, deletes included) and the repository's activity.

Both need read access to the (live) repository, as its tags do. The trail is a followed
projection: an answer waits (bounded) for it to reach the log's head as of the request, so a
push made before the request is in it.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from dockyard.api.v0.deps import PrincipalDep, ServicesDep, readable_repository
from dockyard.api.v0.paging import Cursor, Limit, decode_cursor, encode_cursor, link_next
from dockyard.api.v0.schemas import AuditEvent, AuditEventPage, TagHistory, TagStep
from dockyard.api.v2.common import Services
from dockyard.domain.access import Principal
from dockyard.domain.errors import NotFound
from dockyard.domain.names import is_valid_tag
from dockyard.projections.audit_queries import EVERYTHING, AuditFilter

router = APIRouter(prefix="/repositories/{namespace}/{repo:path}", tags=["history"])
FRESHNESS_WAIT = 2.0


def _position(cursor: str | None) -> int:
    text = decode_cursor(cursor)
    if text is None:
        return 0
    if not text.isdigit():
        raise HTTPException(400, "invalid cursor: pass the one the previous page's Link header names")
    return int(text)


def _fresh_trail(svc: Services) -> None:
    svc.read_side.wait("audit", svc.read_side.head(), FRESHNESS_WAIT)


def step(row: dict[str, Any]) -> TagStep:
    details = orjson.loads(row["details"])
    previous = details.get("previous")
    if row["action"] == "tag.deleted":
        action = "deleted"
    else:
        action = "pushed" if previous is None else "moved"
    return TagStep(position=row["position"], recorded_at=row["recorded_at"], action=action,
                   digest=row["digest"], previous=previous if action != "deleted" else row["digest"],
                   actor=row["actor"], client_address=row["client_address"], token=row["token"])


def tag_history(svc: Services, principal: Principal, full: str, tag: str, limit: int,
                cursor: str | None) -> tuple[TagHistory, str | None]:
    readable_repository(svc, principal, full)
    if not is_valid_tag(tag):
        raise NotFound("no such tag", {"repository": full, "tag": tag})
    _fresh_trail(svc)
    rows = svc.read_side.audit.tag_history(full, tag, _position(cursor), limit + 1)
    if not rows and cursor is None:
        raise NotFound("this tag never existed in the repository", {"repository": full, "tag": tag})
    shown = rows[:limit]
    more = len(rows) > limit
    return (TagHistory(repository=full, tag=tag, steps=[step(r) for r in shown]),
            encode_cursor(str(shown[-1]["position"])) if more else None)


@router.get("/tags/{tag}/history", summary="Every digest a tag pointed at, when, by whom, from where "
                                           "(deletes included; read access; oldest first, paged)")
async def get_tag_history(namespace: str, repo: str, tag: str, request: Request, response: Response,
                          principal: PrincipalDep, svc: ServicesDep, limit: Limit = 100,
                          cursor: Cursor = None) -> TagHistory:
    history, next_cursor = await run_in_threadpool(tag_history, svc, principal, f"{namespace}/{repo}", tag,
                                                   limit, cursor)
    link_next(request, response, next_cursor)
    return history


def activity(svc: Services, principal: Principal, full: str, limit: int,
             cursor: str | None) -> tuple[AuditEventPage, str | None]:
    readable_repository(svc, principal, full)
    _fresh_trail(svc)
    before = _position(cursor) or None
    rows = svc.read_side.audit.latest(AuditFilter(repository=full), EVERYTHING, limit + 1, before)
    shown = rows[:limit]
    more = len(rows) > limit
    events = [AuditEvent(**{**r, "details": orjson.loads(r["details"])}) for r in shown]
    next_cursor = encode_cursor(str(shown[-1]["position"])) if more else None
    return AuditEventPage(events=events, next_cursor=next_cursor), next_cursor


@router.get("/activity", summary="What happened to the repository, newest first (read access; paged)")
async def get_activity(namespace: str, repo: str, request: Request, response: Response, principal: PrincipalDep,
                       svc: ServicesDep, limit: Limit = 100, cursor: Cursor = None) -> AuditEventPage:
    page, next_cursor = await run_in_threadpool(activity, svc, principal, f"{namespace}/{repo}", limit, cursor)
    link_next(request, response, next_cursor)
    return page
