"""`/api/v0/events/stream`: the change feed — the audit trail as Server-Sent Events, followed
live as the audit projection advances.

Each event is one SSE message whose `id:` is its log position and whose `data:` is the JSON of
`/api/v0/events`' entries. A client that reconnects with `Last-Event-ID` (browsers' EventSource
does so by itself) resumes after that position: positions are the log's own, so resuming works
across server restarts and replicas, with no gap and no duplicate. `?after=` does the same for a
first connection. The filters and the visibility are those of `/api/v0/events` (admins all,
organisation owners their organisations' events, others their own actions); visibility is
decided once, when the stream opens.

Bounded: the feed reads one page of rows at a time and hands them to the connection one by one
(a client that stops reading for `SEND_TIMEOUT` seconds is dropped). Idle, it waits for the audit
projection's position to pass the one it last read (`ReadSide.advanced`), sending a comment
heartbeat every `HEARTBEAT` seconds so proxies keep the connection. `?follow=false` sends what
matches now and closes (a snapshot, as `tail` without `-f`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from dockyard.api.v0.deps import ServicesDep, SignedIn
from dockyard.api.v0.events import _event, _time
from dockyard.api.v0.schemas import AuditEvent
from dockyard.domain.errors import InvalidRequest
from dockyard.projections.audit_queries import AuditFilter, AuditQueries, AuditScope
from dockyard.projections.read_side import ReadSide

router = APIRouter(prefix="/events", tags=["events"])

PAGE = 200  # rows read from the trail at once: the most the feed holds in memory per connection
HEARTBEAT = 15.0  # seconds between comment lines while nothing happens
SEND_TIMEOUT = 30.0  # seconds a client may stall one write before the feed drops it
PROJECTION = "audit"


def _resume_position(after: int, last_event_id: str | None) -> int:
    if last_event_id is None or not last_event_id.strip():
        return after
    if not last_event_id.strip().isdigit():
        raise InvalidRequest("Last-Event-ID must be the id (a log position) of an event this feed sent",
                             {"lastEventId": last_event_id})
    return max(after, int(last_event_id))


async def follow(read_side: ReadSide, queries: AuditQueries, filters: AuditFilter, scope: AuditScope,
                 live: bool = True, heartbeat: float = HEARTBEAT) -> AsyncIterator[dict[str, Any]]:
    """Every row matching `filters` within `scope` after `filters.after`, in log order; with
    `live`, then every later one as the audit projection folds it, forever.

    No gap: the projection's position is read *before* each query, and rows up to that position
    were committed with it, so when a page comes back short every row up to that position has
    been seen; the next query waits until the position moves past it."""
    after = filters.after
    while True:
        folded = await run_in_threadpool(read_side.positions.position, PROJECTION)
        rows = await run_in_threadpool(queries.page, _with_after(filters, after), scope, PAGE)
        for row in rows:
            yield row
        if rows:
            after = rows[-1]["position"]
        if len(rows) == PAGE:
            continue
        if not live:
            return
        after = max(after, folded)  # nothing matched up to `folded`; skip it next time
        await read_side.advanced(PROJECTION, folded, heartbeat)


def _with_after(f: AuditFilter, after: int) -> AuditFilter:
    return AuditFilter(f.actor, f.namespace, f.repository, f.action, f.since, f.until, after)


async def _messages(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[ServerSentEvent]:
    async for row in rows:
        body = AuditEvent(**_event(row)).model_dump(by_alias=True)
        yield ServerSentEvent(data=orjson.dumps(body).decode(), id=str(row["position"]))


@router.get("/stream", summary="The change feed: the audit trail as Server-Sent Events, `id:` = log position; "
            "resume with `Last-Event-ID` (same filters and visibility as /events)",
            response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "One message per event; `data:` is an AuditEvent as JSON"}})
async def stream_events(
    principal: SignedIn, svc: ServicesDep,
    actor: str | None = None, namespace: str | None = None, repository: str | None = None,
    action: Annotated[str | None, Query(description="e.g. `tag.moved`, `manifest.pushed`")] = None,
    since: Annotated[str | None, Query(description="ISO 8601, inclusive")] = None,
    until: Annotated[str | None, Query(description="ISO 8601, exclusive")] = None,
    after: Annotated[int, Query(ge=0, description="Only events after this log position")] = 0,
    follow_live: Annotated[bool, Query(alias="follow", description="false: send what matches now, then close")] = True,
    last_event_id: Annotated[str | None, Header(description="Resume after this event (its position)")] = None,
) -> EventSourceResponse:
    read_side = svc.read_side
    start = _resume_position(after, last_event_id)
    filters = AuditFilter(actor, namespace, repository, action, _time("since", since), _time("until", until), start)
    scope = await run_in_threadpool(read_side.audit.scope_for, principal.name, principal.is_admin)
    rows = follow(read_side, read_side.audit, filters, scope, live=follow_live)
    return EventSourceResponse(_messages(rows), ping=int(HEARTBEAT), send_timeout=SEND_TIMEOUT)
