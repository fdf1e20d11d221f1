"""`Logs` (global admins): pick a component, see its recent lines, follow them live (the page
polls `/logs/lines`). The lines are every replica's, each naming its replica (`api.v0.logs.recent_lines`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from dockyard.api.portal.web import AdminViewer, PortalRoute, render
from dockyard.api.recent_logs import COMPONENTS
from dockyard.api.v0.logs import recent_lines

router = APIRouter(route_class=PortalRoute, include_in_schema=False)


def _component(value: str | None) -> str | None:
    return value if value in COMPONENTS else None


@router.get("/logs")
async def logs_page(request: Request, current: AdminViewer, component: str | None = None) -> Response:
    chosen = _component(component)
    lines = await recent_lines(request, chosen)
    return render(request, "logs.html", section="logs", components=COMPONENTS, component=chosen or "",
                  lines=lines)


@router.get("/logs/lines")
async def log_lines(request: Request, current: AdminViewer, component: str | None = None) -> Response:
    return JSONResponse({"lines": await recent_lines(request, _component(component))})
