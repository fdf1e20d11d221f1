"""`GET /v2/<name>/tags/list` with `n` and `last` pagination."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.api.read_threads import read_in_thread
from dockyard.api.v2.common import headers, next_link, page_params, repository, scope, services
from dockyard.domain.errors import NameUnknown


async def list_tags(request: Request) -> Response:
    svc = services(request)
    name = repository(request)
    await svc.auth.require(request, scope(name, "pull"))
    n, last = page_params(request)
    queries = svc.registry_view

    def page() -> list[str] | None:
        if not queries.repository_exists(name):
            return None
        return [] if n == 0 else queries.list_tags(name, None if n is None else n + 1, last)

    found = await read_in_thread(page)  # one thread hop for both reads: each costs as much as a read
    if found is None:
        raise NameUnknown(detail={"name": name})
    tags = found
    extra = {}
    if n is not None and len(tags) > n:
        tags = tags[:n]
        extra["Link"] = next_link(f"/v2/{name}/tags/list", n, tags[-1])
    return Response(orjson.dumps({"name": name, "tags": tags}), media_type="application/json",
                    headers=headers(**extra))


routes = [Route("/v2/{name:path}/tags/list", list_tags, methods=["GET"])]
