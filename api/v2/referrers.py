"""`GET /v2/<name>/referrers/<digest>`: the manifests whose `subject` is that digest."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.api.read_threads import read_in_thread
from dockyard.api.v2.common import headers, repository, scope, services
from dockyard.domain.digest import Digest
from dockyard.domain.manifest_format import OCI_INDEX


async def list_referrers(request: Request) -> Response:
    svc = services(request)
    name = repository(request)
    await svc.auth.require(request, scope(name, "pull"))
    subject = str(Digest.parse(request.path_params["digest"]))
    artifact_type = request.query_params.get("artifactType") or None
    # The spec forbids 404 here: an unknown repository or subject has no referrers.
    descriptors = await read_in_thread(svc.registry_view.referrers, name, subject, artifact_type)
    extra = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
    body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
    return Response(orjson.dumps(body), media_type=OCI_INDEX, headers=headers(**extra))


routes = [Route("/v2/{name:path}/referrers/{digest}", list_referrers, methods=["GET"])]
