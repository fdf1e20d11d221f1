"""`/api/v0/logs` (global admins): this process's recent log lines per component
(`api.recent_logs`), as JSON, or followed live as Server-Sent Events (`follow=true`): the recent
lines first, then each new one as it is logged, one `log` event per line with its sequence number
as the event id. A follow is bounded: it ends after `seconds` (at most an hour; a client such as
the portal or `curl -N` reconnects), and sse-starlette's pings keep proxies from closing it idle.
Per process: behind a load balancer each replica answers with its own lines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from sse_starlette.sse import EventSourceResponse

from dockyard.api.recent_logs import COMPONENTS, RecentLogs
from dockyard.api.v0.deps import GlobalAdmin
from dockyard.api.v0.schemas import LogLines

router = APIRouter(prefix="/logs", tags=["logs"])
Component = Literal["api", "auth", "registry", "storage", "projections", "gc", "database"]
POLL_SECONDS = 0.25
assert set(COMPONENTS) == set(Component.__args__)  # type: ignore[attr-defined]


@router.get("", summary="Recent log lines of a component; follow=true streams them (Server-Sent Events)",
            responses={200: {"content": {"text/event-stream": {}}}}, response_model=LogLines)
async def read_logs(request: Request, _admin: GlobalAdmin, component: Component | None = None,
                    follow: bool = False, limit: Annotated[int, Query(ge=1, le=1000)] = 500,
                    seconds: Annotated[float, Query(gt=0, le=3600)] = 300) -> Any:
    recent: RecentLogs = request.app.state.recent_logs
    entries, last = recent.since(component, 0, limit)
    if not follow:
        return LogLines(component=component, lines=[line for _, line in entries])
    return EventSourceResponse(_follow(request, recent, component, entries, last, seconds), ping=15)


async def _follow(request: Request, recent: RecentLogs, component: str | None, entries: list[tuple[int, str]],
                  last: int, seconds: float) -> AsyncIterator[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while True:
        for seq, line in entries:
            yield {"event": "log", "id": str(seq), "data": line}
        if time.monotonic() >= deadline or await request.is_disconnected():
            return
        await asyncio.sleep(POLL_SECONDS)
        entries, last = recent.since(component, last, 1000)
