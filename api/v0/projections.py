"""`/api/v0/projections` (global admins): each read model's position, the log's head, lag in
events and seconds, rows and state — the inline ones and those that follow the log. Rebuilds
run from the CLI (`dockyard projections rebuild NAME|--all`), which swaps tables online."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from dockyard.api.v0.deps import GlobalAdmin, ServicesDep
from dockyard.api.v0.schemas import ProjectionList, ProjectionStatus
from dockyard.projections.status import projection_status

router = APIRouter(prefix="/projections", tags=["projections"])


@router.get("", summary="Read models: position, head, lag, rows, state (global admins)")
async def list_projections(_admin: GlobalAdmin, svc: ServicesDep) -> ProjectionList:
    rows = await run_in_threadpool(projection_status, svc.read_side)
    return ProjectionList(projections=[ProjectionStatus(**r) for r in rows])
