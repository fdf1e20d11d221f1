"""`/api/v0/projections` (global admins): each read model's position, the log's head, lag in
events and seconds, rows and state — the inline ones and those that follow the log — and
"retry now" for a failed one (the rule is `commands.projections.retry_projection`). Rebuilds
run from the CLI (`dockyard projections rebuild NAME|--all`), which swaps tables online."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from dockyard.api.v0.deps import GlobalAdmin, ServicesDep, require_token_admin
from dockyard.api.v0.schemas import ProjectionList, ProjectionStatus
from dockyard.commands.projections import retry_projection
from dockyard.projections.status import projection_status

router = APIRouter(prefix="/projections", tags=["projections"])


@router.get("", summary="Read models: position, head, lag, rows, state (global admins)")
async def list_projections(_admin: GlobalAdmin, svc: ServicesDep) -> ProjectionList:
    rows = await run_in_threadpool(projection_status, svc.read_side)
    return ProjectionList(projections=[ProjectionStatus(**r) for r in rows])


@router.post("/{name}/retry", status_code=202,
             summary="Try a failed projection's failing batch again now, not after its backoff (global admins)")
async def retry(name: str, admin: GlobalAdmin, svc: ServicesDep) -> ProjectionStatus:
    """202: the leading runner (in whichever process) tries within a second; the answer is the
    projection's status as the request left it (still `failed at N` until the batch goes through).
    404 for an unknown projection, 409 for an inline view or one that has not failed."""
    require_token_admin(admin)
    row = await run_in_threadpool(retry_projection, svc.read_side, name)
    return ProjectionStatus(**row)
