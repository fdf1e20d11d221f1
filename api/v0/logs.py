"""`/api/v0/logs` (global admins): the recent log lines of every replica on this database
(`api.shared_logs`), per component, each naming the replica (process) that logged it, merged by
time; as JSON, or followed live as Server-Sent Events (`follow=true`): the recent lines first,
then each new one as it is gathered, one `log` event per line with its id as the event id.
A follow is bounded: it ends after `seconds` (at most an hour; a client such as the portal or
`curl -N` reconnects), and sse-starlette's pings keep proxies from closing it idle.

While the database cannot be read, a plain read answers this process's own lines
(`api.recent_logs`) rather than nothing: the logs are most wanted when something is down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal, Protocol

from fastapi import APIRouter, Query, Request
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from dockyard.api.recent_logs import COMPONENTS, RecentLogs
from dockyard.api.shared_logs import SharedLogs
from dockyard.api.v0.deps import GlobalAdmin
from dockyard.api.v0.schemas import LogLines

router = APIRouter(prefix="/logs", tags=["logs"])
Component = Literal["api", "auth", "registry", "storage", "projections", "gc", "database"]
POLL_SECONDS = 0.25
assert set(COMPONENTS) == set(Component.__args__)  # type: ignore[attr-defined]


class LogSource(Protocol):
    def since(self, component: str | None, after: int, limit: int = 500) -> tuple[list[tuple[int, str]], int]: ...

    def generation(self) -> int: ...


def gathered(request: Request) -> SharedLogs | RecentLogs:
    """Every replica's lines when the app gathers them, else this process's."""
    return getattr(request.app.state, "shared_logs", None) or request.app.state.recent_logs


async def recent_lines(request: Request, component: str | None, limit: int = 500) -> list[str]:
    """The newest `limit` lines of a component (all when None): every replica's, or this process's
    while the database cannot be read. Also the portal's `Logs` tab."""
    source = gathered(request)
    try:
        return await run_in_threadpool(source.lines, component, limit)
    except Exception:  # noqa: BLE001 — the database is away: this process's lines, not an error
        return request.app.state.recent_logs.lines(component, limit)


@router.get("", summary="Recent log lines of a component, every replica's; follow=true streams them "
                        "(Server-Sent Events)",
            responses={200: {"content": {"text/event-stream": {}}}}, response_model=LogLines)
async def read_logs(request: Request, _admin: GlobalAdmin, component: Component | None = None,
                    follow: bool = False, limit: Annotated[int, Query(ge=1, le=1000)] = 500,
                    seconds: Annotated[float, Query(gt=0, le=3600)] = 300) -> Any:
    if not follow:
        return LogLines(component=component, lines=await recent_lines(request, component, limit))
    source = gathered(request)
    if isinstance(source, SharedLogs):
        source.listen()  # PostgreSQL: woken by other replicas' writes
    entries, last = await run_in_threadpool(source.since, component, 0, limit)
    return EventSourceResponse(_follow(request, source, component, entries, last, seconds), ping=15)


async def _follow(request: Request, source: LogSource, component: str | None, entries: list[tuple[int, str]],
                  last: int, seconds: float) -> AsyncIterator[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    seen = source.generation()
    while True:
        for seq, line in entries:
            yield {"event": "log", "id": str(seq), "data": line}
        entries = []
        if time.monotonic() >= deadline or await request.is_disconnected():
            return
        await asyncio.sleep(POLL_SECONDS)
        if source.generation() != seen:
            seen = source.generation()
            try:
                entries, last = await run_in_threadpool(source.since, component, last, 1000)
            except Exception:  # noqa: BLE001 — the database is away for now: keep following
                entries = []
