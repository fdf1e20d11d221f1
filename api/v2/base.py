"""`/v2/` (the version check) and `/v2/_catalog`."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.api.auth import Scope
from dockyard.api.read_threads import read_in_thread
from dockyard.api.v2.common import headers, next_link, page_params, services
from dockyard.domain import access

CATALOG = Scope("registry", "catalog", frozenset({"*"}))


async def version_check(request: Request) -> Response:
    await services(request).auth.require_login(request)
    return Response(b"{}", media_type="application/json", headers=headers())


async def catalog(request: Request) -> Response:
    svc = services(request)
    caller = await svc.auth.require(request, CATALOG)
    n, last = page_params(request)

    def visible() -> list[str]:
        # Only what the caller may pull exists for them; page over the filtered names.
        names: list[str] = []
        cursor = last
        while n is None or len(names) <= n:
            batch = svc.registry_view.catalog(500, cursor)
            if not batch:
                break
            everything = access.reads_everything(caller.principal) or svc.auth.mode() == "none"
            for name in batch:
                if everything or svc.auth.allowed(caller.principal, Scope("repository", name, frozenset({"pull"}))):
                    names.append(name)
            cursor = batch[-1]
        return names

    names = await read_in_thread(visible) if n != 0 else []
    extra = {}
    if n is not None and len(names) > n:
        names = names[:n]
        extra["Link"] = next_link("/v2/_catalog", n, names[-1])
    return Response(orjson.dumps({"repositories": names}), media_type="application/json",
                    headers=headers(**extra))


routes = [
    Route("/v2/", version_check, methods=["GET", "HEAD"]),
    Route("/v2/_catalog", catalog, methods=["GET"]),
]
