"""Garbage collection under `/api/v0/` (DTR's Settings > Garbage Collection). Global admins only.

    GET|PUT /api/v0/settings/gc   the policy: {"schedule": "0 0 0 * * *", "deleteUntagged": false,
                                  "graceHours": 1}; the answer adds `nextRun`
    POST    /api/v0/gc/run        run now, and answer with the report (`dryRun`, `explain`:
                                  per blob, kept by what or gone because of which event);
                                  409 while another run is in progress anywhere
    GET     /api/v0/gc/runs       the runs recorded in the log, newest first
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from dockyard.api.v0.deps import GlobalAdmin, ServicesDep, require_token_admin
from dockyard.api.v0.schemas import Model
from dockyard.api.v2.common import Services
from dockyard.commands.gc import change_gc_settings, gc_runs, gc_settings, next_run
from dockyard.domain.gc_settings import DEFAULT_GRACE_HOURS
from dockyard.gc.collector import GarbageCollector

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
    action: str = Field(description="DELETE or KEEP.")
    size: int | None = None
    reason: dict[str, Any] = Field(description="What keeps it (manifests, tags, repositories, from which "
                                               "position), or the event that left it unreferenced.")


class GcRunReport(Model):
    id: str
    position: int = Field(description="The log position the run marked at.")
    dry_run: bool
    candidates: int
    deleted: int
    kept: int
    bytes_freed: int
    errors: list[str]
    duration_seconds: float
    mark_seconds: float
    blobs: list[GcBlobDecision] | None = Field(None, description="With `explain`: every stored blob's decision.")


class GcRunSummary(Model):
    id: str
    state: str = Field(description="running, done or failed.")
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


@router.post("/gc/run", summary="Run garbage collection now (409 while one runs)", response_model_exclude_none=True)
async def run_gc(principal: GlobalAdmin, svc: ServicesDep, body: GcRunRequest | None = None) -> GcRunReport:
    require_token_admin(principal)
    request = body or GcRunRequest.model_validate({})

    def run() -> GcRunReport:
        collector = GarbageCollector(svc.registry, svc.store, svc.uploads.clock)
        return GcRunReport.model_validate(collector.run(dry_run=request.dry_run).as_dict(explain=request.explain))

    return await run_in_threadpool(run)


@router.get("/gc/runs", summary="Garbage-collection runs, newest first", response_model_exclude_none=True)
async def list_gc_runs(principal: GlobalAdmin, svc: ServicesDep) -> list[GcRunSummary]:
    return [GcRunSummary.model_validate(run) for run in await run_in_threadpool(gc_runs, svc.registry)]
