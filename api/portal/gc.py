"""Settings > `Garbage Collection` (global admins): the `Schedule` (six-field cron, seconds
first, as the lab's `0 0 0 * * *`; five fields accepted), the policy, `Save`, the next run
time, `Run now`, and the last runs with the bytes they freed.

The commands are the API's (`commands.gc`, `gc.collector`): a bad cron expression is refused
with the reason next to the field; `Run now` while another run is in progress says so (409).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from dockyard.api.portal.settings import TABS
from dockyard.api.portal.web import AdminViewer, Form, PortalRoute, redirect, render, services
from dockyard.api.v2.common import Services
from dockyard.commands.gc import change_gc_settings, gc_runs, gc_settings, next_run
from dockyard.domain.errors import DomainError, InvalidRequest
from dockyard.gc.collector import GarbageCollector, settle_abandoned_runs

router = APIRouter(route_class=PortalRoute, include_in_schema=False)


def gc_context(svc: Services) -> dict[str, Any]:
    settle_abandoned_runs(svc.registry)  # a run whose process died shows as abandoned, as in the API
    policy = gc_settings(svc.registry)
    return {"policy": policy, "next_run": next_run(policy.schedule), "runs": gc_runs(svc.registry, 10)}


async def render_gc(request: Request, status_code: int = 200, **overrides: Any) -> Response:
    context = await run_in_threadpool(gc_context, services(request))
    defaults: dict[str, Any] = {"error": None, "run_error": None, "values": None, "report": None}
    return render(request, "settings_gc.html", status_code, section="settings", tabs=TABS, tab="Garbage Collection",
                  **{**defaults, **context, **overrides})


@router.get("/settings/gc")
async def gc_page(request: Request, current: AdminViewer) -> Response:
    return await render_gc(request)


@router.post("/settings/gc")
async def save_gc(request: Request, current: AdminViewer, form: Form) -> Response:
    schedule, grace_hours = form.get("schedule", "").strip(), form.get("grace_hours", "1").strip()
    delete_untagged = form.get("delete_untagged") == "on"
    values = {"schedule": schedule, "grace_hours": grace_hours, "delete_untagged": delete_untagged}

    def save() -> None:
        try:
            grace = float(grace_hours or "1")
        except ValueError:
            raise InvalidRequest("Grace period must be a number of hours.") from None
        change_gc_settings(services(request).registry, schedule or None, delete_untagged, grace)

    try:
        await run_in_threadpool(save)
    except DomainError as exc:
        return await render_gc(request, 400, error=exc.message, values=values)
    return redirect("/settings/gc")


@router.post("/settings/gc/run")
async def run_now(request: Request, current: AdminViewer, form: Form) -> Response:
    svc = services(request)

    def run() -> dict[str, Any]:
        return GarbageCollector(svc.registry, svc.store, svc.uploads.clock).run().as_dict()

    try:
        report = await run_in_threadpool(run)
    except DomainError as exc:
        return await render_gc(request, 409, run_error=exc.message)
    return await render_gc(request, report=report)
