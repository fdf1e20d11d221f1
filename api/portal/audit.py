"""`Audit`: the audit trail with its filters, newest first, and its JSONL/CSV export.

Who sees what is the API's rule (`AuditQueries.scope_for`): global admins everything, an
organisation's owners its events, everyone else their own actions. The export streams every
match in constant memory, as `GET /api/v0/events?format=…` does, but with the portal session.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from dockyard.api.portal.web import CurrentViewer, PortalRoute, Viewer, render, services
from dockyard.api.v0.events import _csv_lines, _jsonl_lines
from dockyard.api.v2.common import Services
from dockyard.domain.errors import InvalidRequest
from dockyard.projections.audit_queries import AuditFilter, AuditScope

router = APIRouter(route_class=PortalRoute, include_in_schema=False)
PAGE = 50
FIELDS = ("actor", "namespace", "repository", "action", "since", "until")


def _filters(request: Request) -> tuple[dict[str, str], AuditFilter]:
    values = {k: request.query_params.get(k, "").strip() for k in FIELDS}
    for name in ("since", "until"):
        if values[name]:
            try:
                datetime.fromisoformat(values[name])
            except ValueError:
                raise InvalidRequest(f"{name.capitalize()} must be a date or time such as 2026-03-01 "
                                     "or 2026-03-01T12:00") from None
    chosen = {k: values[k] or None for k in FIELDS}
    return values, AuditFilter(actor=chosen["actor"], namespace=chosen["namespace"],
                               repository=chosen["repository"], action=chosen["action"], since=chosen["since"],
                               until=chosen["until"])


def _scope(request: Request, viewer: Viewer) -> AuditScope:
    return scope_of(services(request), viewer)


def scope_of(svc: Services, viewer: Viewer) -> AuditScope:
    """What of the trail the viewer may read (the API's rule)."""
    return svc.read_side.audit.scope_for(viewer.principal.name, viewer.is_admin)


@router.get("/audit")
async def audit_page(request: Request, current: CurrentViewer, before: int | None = None) -> Response:
    try:
        values, filters = _filters(request)
    except InvalidRequest as exc:
        return render(request, "audit.html", 400, section="audit", values={k: request.query_params.get(k, "")
                                                                          for k in FIELDS},
                      events=[], error=exc.message, older=None, query="")
    audit = services(request).read_side.audit
    scope = await run_in_threadpool(_scope, request, current)
    rows = await run_in_threadpool(audit.latest, filters, scope, PAGE, before)
    query = urlencode({k: v for k, v in values.items() if v})
    older = rows[-1]["position"] if len(rows) == PAGE else None
    return render(request, "audit.html", section="audit", values=values, events=rows, error=None, older=older,
                  query=query)


@router.get("/audit/export")
async def export(request: Request, current: CurrentViewer, format: str = "jsonl") -> Response:
    _, filters = _filters(request)
    audit = services(request).read_side.audit
    scope = await run_in_threadpool(_scope, request, current)
    if format == "csv":
        return StreamingResponse(_csv_lines(audit.stream(filters, scope)), media_type="text/csv",
                                 headers={"Content-Disposition": 'attachment; filename="audit.csv"'})
    return StreamingResponse(_jsonl_lines(audit.stream(filters, scope)), media_type="application/x-ndjson",
                             headers={"Content-Disposition": 'attachment; filename="audit.jsonl"'})
