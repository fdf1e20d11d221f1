"""`/api/v0/events`: the audit trail — filtered, paged as every `/api/v0` listing (`?limit=`,
an opaque `?cursor=` from the `Link: …; rel="next"` header; `api.v0.paging`), or streamed whole
as JSON lines or CSV in constant memory. `after=POSITION` is a filter (events after a log
position), so a consumer can resume from the last position it saw.

Who reads what: global admins everything; an organisation's owners its events; everyone else
their own actions. `waitFor=POSITION` waits (bounded) until the audit projection has folded the
log up to that position, for read-your-writes after a command.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from dockyard.api.v0.deps import ServicesDep, SignedIn
from dockyard.api.v0.paging import DEFAULT_LIMIT, Cursor, Limit, decode_cursor, encode_cursor, link_next
from dockyard.api.v0.schemas import AuditEvent, AuditEventPage
from dockyard.domain.errors import InvalidRequest, TooManyRequests
from dockyard.projections.audit_queries import AuditFilter
from dockyard.projections.audit_trail import COLUMNS

router = APIRouter(prefix="/events", tags=["events"])
CSV_COLUMNS = COLUMNS


def _time(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"{name} must be an ISO 8601 time", {name: value}) from None
    return value


def _event(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "details": orjson.loads(row["details"])}


def _csv_lines(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for n, row in enumerate(rows, 1):
        writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
        if n % 500 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _jsonl_lines(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    chunk: list[bytes] = []
    for row in rows:
        chunk.append(orjson.dumps(AuditEvent(**_event(row)).model_dump(by_alias=True)) + b"\n")
        if len(chunk) == 500:
            yield b"".join(chunk)
            chunk = []
    yield b"".join(chunk)


@router.get("", summary="The audit trail: one entry per event (admins: all; org owners: their org; "
            "others: their own actions)", response_model=AuditEventPage)
async def list_events(
    request: Request, principal: SignedIn, svc: ServicesDep,
    actor: str | None = None, namespace: str | None = None, repository: str | None = None,
    action: Annotated[str | None, Query(description="e.g. `tag.moved`, `manifest.pushed`, `team.member_added`")] = None,
    since: Annotated[str | None, Query(description="ISO 8601, inclusive")] = None,
    until: Annotated[str | None, Query(description="ISO 8601, exclusive")] = None,
    after: Annotated[int, Query(ge=0, description="Only events after this log position")] = 0,
    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
    format: Annotated[Literal["json", "jsonl", "csv"], Query(description="jsonl and csv stream every match")] = "json",
    wait_for: Annotated[int | None, Query(alias="waitFor", ge=0,
                                          description="First wait until the trail has folded this position")] = None,
) -> Any:
    read_side = svc.read_side
    resume = decode_cursor(cursor)
    if resume is not None:
        if not resume.isdigit():
            raise InvalidRequest("invalid cursor: pass the one the previous page's Link header names")
        after = max(after, int(resume))
    filters = AuditFilter(actor, namespace, repository, action, _time("since", since), _time("until", until), after)
    if wait_for is not None and not await run_in_threadpool(read_side.wait, "audit", wait_for):
        raise TooManyRequests("the audit trail has not reached that position yet; retry",
                              {"waitFor": wait_for, "retryAfterSeconds": 1})
    scope = await run_in_threadpool(read_side.audit.scope_for, principal.name, principal.is_admin)
    if format == "jsonl":
        return StreamingResponse(_jsonl_lines(read_side.audit.stream(filters, scope)),
                                 media_type="application/x-ndjson")
    if format == "csv":
        return StreamingResponse(_csv_lines(read_side.audit.stream(filters, scope)), media_type="text/csv",
                                 headers={"Content-Disposition": 'attachment; filename="events.csv"'})
    rows = await run_in_threadpool(read_side.audit.page, filters, scope, limit)
    next_cursor = encode_cursor(str(rows[-1]["position"])) if len(rows) == limit else None
    page = AuditEventPage(events=[AuditEvent(**_event(r)) for r in rows], next_cursor=next_cursor)
    response = Response(orjson.dumps(page.model_dump(by_alias=True)), media_type="application/json")
    link_next(request, response, next_cursor)
    return response
