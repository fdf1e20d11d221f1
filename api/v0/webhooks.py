"""`/api/v0/webhooks`: subscriptions to notifications about a namespace's or a repository's
changes (push, delete, restore), made by global admins and the organisation's owners; their
delivery history and redelivery. The secret is write-only: stored outside the log, never
answered. Rules: `domain.webhook`; delivery: `projections.webhook_delivery`.
"""

from __future__ import annotations

from typing import Literal

import orjson
from fastapi import APIRouter, Request, Response, status
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from dockyard.api.v0.deps import ServicesDep, SignedIn
from dockyard.api.v0.paging import DEFAULT_LIMIT, Cursor, Limit, decode_cursor, encode_cursor, link_next
from dockyard.api.v0.schemas import Model
from dockyard.commands.webhooks import Subscription
from dockyard.domain.errors import InvalidRequest, NotFound

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
Kind = Literal["push", "delete", "restore"]


class NewWebhook(Model):
    url: str = Field(description="Where to POST notifications (http or https)", max_length=2000)
    events: list[Kind] = Field(min_length=1)
    namespace: str | None = Field(default=None, description="Every repository of this namespace ...")
    repository: str | None = Field(default=None, description="... or this one repository")
    secret: str = Field(min_length=16, max_length=512,
                        description="Signs each body: `X-Dockyard-Signature: sha256=<hex HMAC-SHA256>`")


class Webhook(Model):
    id: str
    url: str
    events: list[str]
    namespace: str
    repository: str | None
    owner: str = Field(description="Who made it: nothing is sent about what they cannot read")
    position: int = Field(description="The log position of its creation: it is told of what comes after")
    created_at: str


class WebhookList(Model):
    webhooks: list[Webhook]


class Delivery(Model):
    id: str
    position: int = Field(description="The log position of the event sent")
    event_id: str = Field(description="The `id` in the envelope (the same for every attempt)")
    action: str
    attempted_at: str
    status: int | None = Field(description="The receiver's HTTP status; null when it could not be reached")
    error: str | None
    redelivery: bool


class DeliveryList(Model):
    deliveries: list[Delivery]
    next_cursor: str | None = Field(default=None, description="The `cursor` of the next page (also in the `Link` "
                                    "header); null on the last page.")


def _view(s: Subscription) -> Webhook:
    return Webhook(id=s.id, url=s.url, events=list(s.events), namespace=s.namespace, repository=s.repository,
                   owner=s.owner, position=s.position, created_at=s.created_at)


@router.post("", status_code=status.HTTP_201_CREATED,
             summary="Subscribe a URL to a namespace's or repository's changes (admins, organisation owners)")
async def create_webhook(body: NewWebhook, principal: SignedIn, svc: ServicesDep) -> Webhook:
    found = await run_in_threadpool(svc.webhooks.create, principal, body.url, list(body.events), body.namespace,
                                    body.repository, body.secret)
    return _view(found)


@router.get("", summary="The webhooks the caller may manage")
async def list_webhooks(principal: SignedIn, svc: ServicesDep) -> WebhookList:
    found = await run_in_threadpool(svc.webhooks.visible, principal)
    return WebhookList(webhooks=[_view(s) for s in found])


@router.get("/{webhook_id}", summary="One webhook (its secret is never answered)")
async def get_webhook(webhook_id: str, principal: SignedIn, svc: ServicesDep) -> Webhook:
    return _view(await run_in_threadpool(svc.webhooks.get, principal, webhook_id))


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a webhook")
async def delete_webhook(webhook_id: str, principal: SignedIn, svc: ServicesDep) -> Response:
    await run_in_threadpool(svc.webhooks.delete, principal, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{webhook_id}/deliveries", summary="A webhook's latest delivery attempts, newest first (the latest "
            "`webhook_history` of them, and every failed one whose event is not delivered yet)")
async def list_deliveries(webhook_id: str, request: Request, response: Response, principal: SignedIn,
                          svc: ServicesDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> DeliveryList:
    after = _delivery_key(decode_cursor(cursor))

    def deliveries() -> DeliveryList:
        sub = svc.webhooks.get(principal, webhook_id)
        rows = svc.webhook_delivery.deliveries(sub.id, limit + 1, after)
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(orjson.dumps(svc.webhook_delivery.cursor_key(rows[-1])).decode()) if more else None
        return DeliveryList(deliveries=[Delivery(**{**r, "redelivery": bool(r["redelivery"])}) for r in rows],
                            next_cursor=next_cursor)

    found = await run_in_threadpool(deliveries)
    link_next(request, response, found.next_cursor)
    return found


def _delivery_key(key: str | None) -> tuple[str, int, str] | None:
    """The last delivery a cursor names: (attempted_at, position, id); a 400 for one we did not make."""
    if key is None:
        return None
    try:
        at, position, delivery = orjson.loads(key)
        return str(at), int(position), str(delivery)
    except (orjson.JSONDecodeError, TypeError, ValueError):
        raise InvalidRequest("invalid cursor: pass the one the previous page's Link header names") from None


@router.post("/{webhook_id}/deliveries/{delivery_id}/redeliver",
             summary="Send a recorded delivery again now (recorded as a new attempt)")
async def redeliver(webhook_id: str, delivery_id: str, principal: SignedIn, svc: ServicesDep) -> Delivery:
    def again() -> Delivery:
        sub = svc.webhooks.get(principal, webhook_id)
        done = svc.webhook_delivery.redeliver(sub, delivery_id)
        if done is None:
            raise NotFound("no such delivery", {"id": delivery_id})
        [row] = [r for r in svc.webhook_delivery.deliveries(sub.id, 1000) if r["id"] == done["id"]]
        return Delivery(**{**row, "redelivery": bool(row["redelivery"])})

    return await run_in_threadpool(again)
