"""Garbage collection under `/api/v0/` (DTR's Settings > Garbage Collection). Global admins only.

    GET|PUT /api/v0/settings/gc   the policy: {"schedule": "0 0 0 * * *", "deleteUntagged": false,
                                  "graceHours": 1}; the answer adds `nextRun`
    POST    /api/v0/gc/run        start a run now: 202 with its id and a `Location` to poll
                                  (`dryRun`; `explain` makes the Location ask for every blob's
                                  decision); 409 while another run is in progress anywhere
    GET     /api/v0/gc/runs       the runs recorded in the log, newest first
    GET     /api/v0/gc/runs/{id}  one run; `?explain=true` adds, once it ends, each stored blob's
                                  decision (kept by what, or gone because of which event), from
                                  the replica that ran it

A run whose process died (the log shows it open while no process holds the GC lock) is recorded
as abandoned (`GcRun.Abandoned`) by the next listing or run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from dockyard.api.v0.deps import GlobalAdmin, ServicesDep, require_token_admin
from dockyard.api.v0.schemas import Model
from dockyard.api.v2.common import Services
from dockyard.commands.gc import change_gc_settings, gc_run, gc_runs, gc_settings, next_run
from dockyard.domain.errors import NotFound
from dockyard.domain.gc_settings import DEFAULT_GRACE_HOURS
from dockyard.gc.collector import BackgroundRuns, GarbageCollector, settle_abandoned_runs

router = APIRouter(tags=["garbage collection"])


class GcSettingsChange(Model):
    schedule: str | None = Field(None, description="Cron: six fields, seconds first (`0 0 0 * * *` = daily at "
                                                   "midnight UTC), or five; null or empty for no schedule.")
    delete_untagged: bool = Field(False, description="Also collect manifests no tag points at.")
    grace_hours: float = Field(DEFAULT_GRACE_HOURS, ge=0,
                               description="Blobs unreferenced for less than this are kept.")


class GcSettingsView(GcSettingsChange):
    next_run: datetime | None = Field(None, description="When the schedule next fires (UTC).")


class GcRunRequest(Model):
    dry_run: bool = Field(False, description="Decide and explain; delete nothing.")
    explain: bool = Field(False, description="Say for each stored blob why it is kept or goes.")


def _settings_view(svc: Services) -> GcSettingsView:
    policy = gc_settings(svc.registry)
    return GcSettingsView(schedule=policy.schedule, delete_untagged=policy.delete_untagged,
                          grace_hours=policy.grace_hours, next_run=next_run(policy.schedule))


@router.get("/settings/gc", summary="The garbage-collection policy and its next run")
async def get_gc_settings(principal: GlobalAdmin, svc: ServicesDep) -> GcSettingsView:
    return await run_in_threadpool(_settings_view, svc)


@router.put("/settings/gc", summary="Change the garbage-collection policy (recorded as an event)")
async def put_gc_settings(body: GcSettingsChange, principal: GlobalAdmin, svc: ServicesDep) -> GcSettingsView:
    require_token_admin(principal)

    def change() -> GcSettingsView:
        change_gc_settings(svc.registry, body.schedule, body.delete_untagged, body.grace_hours)
        return _settings_view(svc)

    return await run_in_threadpool(change)


class GcBlobDecision(Model):
    digest: str
    action: str = Field(description="delete or keep.")
    size: int | None = None
    reason: dict[str, Any] = Field(description="What keeps it (manifests, tags, repositories, from which "
                                               "position), or the event that left it unreferenced.")


class GcRunSummary(Model):
    id: str
    state: str = Field(description="running, done, failed or abandoned (its process died).")
    position: int
    dry_run: bool
    grace_seconds: float
    delete_untagged: bool
    started_at: datetime
    started_by: str
    finished_at: datetime | None = None
    candidates: int | None = None
    deleted: int | None = None
    kept: int | None = None
    bytes_freed: int | None = None
    errors: list[str] | None = None
    duration_seconds: float | None = None


class GcRunDetail(GcRunSummary):
    mark_seconds: float | None = Field(None, description="From the replica that ran it.")
    blobs: list[GcBlobDecision] | None = Field(
        None, description="With `?explain=true`, once the run ended: every stored blob's decision (kept by "
                          "the replica that ran it, for its last 20 runs).")


class GcRunStarted(Model):
    id: str
    state: str = Field(description="running: poll the Location.")
    dry_run: bool


def background_runs(request: Request) -> BackgroundRuns:
    """This process's API-started runs (made with the app; see `api.app`)."""
    runs: BackgroundRuns = request.app.state.gc_runs
    return runs


@router.post("/gc/run", status_code=202, summary="Start garbage collection now (409 while one runs)")
async def run_gc(principal: GlobalAdmin, svc: ServicesDep, request: Request, response: Response,
                 body: GcRunRequest | None = None) -> GcRunStarted:
    """202 as soon as the run has begun (the GC lock taken, `Started` recorded); the run goes on
    in this process, and `Location` (`/api/v0/gc/runs/{id}`) shows its state and, at the end, its
    counts (and, when `explain` was asked, every blob's decision)."""
    require_token_admin(principal)
    order = body or GcRunRequest.model_validate({})
    runs = background_runs(request)

    def start() -> str:
        return runs.start(GarbageCollector(svc.registry, svc.store, svc.uploads.clock), dry_run=order.dry_run)

    run_id = await run_in_threadpool(start)
    response.headers["Location"] = f"/api/v0/gc/runs/{run_id}" + ("?explain=true" if order.explain else "")
    return GcRunStarted(id=run_id, state="running", dry_run=order.dry_run)


def _runs(svc: Services) -> list[dict[str, Any]]:
    settle_abandoned_runs(svc.registry)
    return gc_runs(svc.registry)


@router.get("/gc/runs", summary="Garbage-collection runs, newest first", response_model_exclude_none=True)
async def list_gc_runs(principal: GlobalAdmin, svc: ServicesDep) -> list[GcRunSummary]:
    return [GcRunSummary.model_validate(run) for run in await run_in_threadpool(_runs, svc)]


@router.get("/gc/runs/{run_id}", summary="One garbage-collection run (poll it after POST /gc/run)",
            response_model_exclude_none=True)
async def get_gc_run(run_id: str, principal: GlobalAdmin, svc: ServicesDep, request: Request,
                     explain: bool = False) -> GcRunDetail:
    def read() -> dict[str, Any] | None:
        settle_abandoned_runs(svc.registry)
        return gc_run(svc.registry, run_id)

    run = await run_in_threadpool(read)
    if run is None:
        raise NotFound("no such garbage-collection run", {"id": run_id})
    detail = GcRunDetail.model_validate(run)
    report = background_runs(request).report(run_id) if run["state"] != "running" else None
    if report is not None:
        detail.mark_seconds = round(report.mark_seconds, 3)
        if explain:
            detail.blobs = [GcBlobDecision.model_validate(d.as_dict()) for d in report.decisions]
    return detail
