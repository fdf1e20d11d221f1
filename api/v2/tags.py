"""`GET /v2/<name>/tags/list` with `n` and `last` pagination."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.api.v2.common import headers, next_link, page_params, read, repository, scope, services
from dockyard.domain.errors import NameUnknown


async def list_tags(request: Request) -> Response:
    svc = services(request)
    name = repository(request)
    await svc.auth.require(request, scope(name, "pull"))
    n, last = page_params(request)
    queries = svc.registry_view
    # One statement for the existence check and the page (one more than asked for, to know
    # whether there is a next page; n=0 asks only whether the repository exists).
    found = await read(request, queries.tags_page_read(name, n + 1 if n else n, last))
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
