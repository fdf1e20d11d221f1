"""`Webhooks`: the subscriptions the viewer may manage (global admins: all; organisation owners:
their organisations'), a form to add one, and each one's delivery history with redelivery. The
commands are the API's (`commands.webhooks`, `projections.webhook_delivery`); the secret is
write-only here too."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from dockyard.api.portal.web import CurrentViewer, Form, PortalRoute, Viewer, redirect, render, services, status_of
from dockyard.domain.errors import DomainError, NotFound
from dockyard.domain.webhook import KINDS

router = APIRouter(route_class=PortalRoute, include_in_schema=False)


async def _render(request: Request, current: Viewer, status_code: int = 200, **extra: object) -> Response:
    rows = await run_in_threadpool(services(request).webhooks.visible, current.principal)
    context = {"webhooks": rows, "kinds": list(KINDS), "error": None, "values": {}}
    return render(request, "webhooks.html", status_code, section="webhooks", **{**context, **extra})


@router.get("/webhooks")
async def webhooks_page(request: Request, current: CurrentViewer) -> Response:
    return await _render(request, current)


@router.post("/webhooks")
async def create_webhook(request: Request, current: CurrentViewer, form: Form) -> Response:
    values = {k: form.get(k, "").strip() for k in ("url", "namespace", "repository", "secret")}
    events = [kind for kind in KINDS if form.get(f"event_{kind}")]
    try:
        made = await run_in_threadpool(services(request).webhooks.create, current.principal, values["url"], events,
                                       values["namespace"] or None, values["repository"] or None, values["secret"])
    except DomainError as exc:
        values["secret"] = ""
        return await _render(request, current, status_of(exc), error=exc.message, values=values)
    return redirect(f"/webhooks/{made.id}")


@router.get("/webhooks/{webhook_id}")
async def webhook_page(request: Request, webhook_id: str, current: CurrentViewer) -> Response:
    svc = services(request)

    def load() -> tuple[object, list[dict[str, object]]]:
        found = svc.webhooks.get(current.principal, webhook_id)
        return found, svc.webhook_delivery.deliveries(found.id)

    hook, deliveries = await run_in_threadpool(load)
    return render(request, "webhook.html", section="webhooks", hook=hook, deliveries=deliveries)


@router.post("/webhooks/{webhook_id}/delete")
async def delete_webhook(request: Request, webhook_id: str, current: CurrentViewer, form: Form) -> Response:
    await run_in_threadpool(services(request).webhooks.delete, current.principal, webhook_id)
    return redirect("/webhooks")


@router.post("/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")
async def redeliver(request: Request, webhook_id: str, delivery_id: str, current: CurrentViewer,
                    form: Form) -> Response:
    svc = services(request)

    def again() -> None:
        found = svc.webhooks.get(current.principal, webhook_id)
        if svc.webhook_delivery.redeliver(found, delivery_id) is None:
            raise NotFound("no such delivery", {"id": delivery_id})

    await run_in_threadpool(again)
    return redirect(f"/webhooks/{webhook_id}")
