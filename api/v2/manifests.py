"""`GET|HEAD|PUT|DELETE /v2/<name>/manifests/<reference>` (a tag or a digest)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.api.v2.common import headers, location, read, repository, scope, services
from dockyard.domain.digest import Digest, is_digest
from dockyard.domain.errors import ManifestTooLarge, ManifestUnknown, NameUnknown
from dockyard.domain.manifest_format import MAX_MANIFEST_BYTES
from dockyard.domain.names import is_valid_tag


def _acceptable(accept: str, media_type: str) -> bool:
    """Whether the client's Accept admits `media_type` (no header, or a wildcard, admits all)."""
    if not accept:
        return True
    for part in accept.split(","):
        value = part.split(";", 1)[0].strip().lower()
        if value in ("*/*", "application/*", media_type, "application/json"):
            return True
    return False


async def get_manifest(request: Request) -> Response:
    svc = services(request)
    name = repository(request)
    await svc.auth.require(request, scope(name, "pull"))
    reference = request.path_params["reference"]
    queries = svc.registry_view
    if is_digest(reference):
        manifest = await read(request, queries.manifest_by_digest_read(name, str(Digest.parse(reference))))
    elif is_valid_tag(reference):
        manifest = await read(request, queries.manifest_by_tag_read(name, reference))
    else:
        manifest = None
    if manifest is None:
        if not await read(request, queries.repository_exists_read(name)):
            raise NameUnknown(detail={"name": name})
        raise ManifestUnknown(detail={"reference": reference})
    # Go clients send one Accept header per media type: read them all, not only the first.
    if not _acceptable(",".join(request.headers.getlist("accept")), manifest.media_type):
        raise ManifestUnknown("manifest not available in an accepted media type",
                              {"mediaType": manifest.media_type})
    extra = headers(Docker_Content_Digest=manifest.digest, ETag=f'"{manifest.digest}"',
                    Content_Length=manifest.size)
    body = manifest.body if request.method == "GET" else b""
    return Response(body, media_type=manifest.media_type, headers=extra)


async def _read_manifest_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_MANIFEST_BYTES:
        raise ManifestTooLarge("manifest exceeds 4 MiB", {"size": int(declared), "limit": MAX_MANIFEST_BYTES})
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_MANIFEST_BYTES:
            raise ManifestTooLarge("manifest exceeds 4 MiB", {"limit": MAX_MANIFEST_BYTES})
    return bytes(body)


async def put_manifest(request: Request) -> Response:
    svc = services(request)
    name = repository(request)
    await svc.auth.require(request, scope(name, "pull", "push"))
    reference = request.path_params["reference"]
    body = await _read_manifest_body(request)
    parsed = await run_in_threadpool(
        svc.registry.push_manifest, name, reference, request.headers.get("content-type"), body)
    extra = {"Location": location(request, f"/v2/{name}/manifests/{parsed.digest}"),
             "Docker_Content_Digest": parsed.digest}
    if parsed.subject:
        extra["OCI_Subject"] = parsed.subject
    return Response(status_code=201, headers=headers(**extra))


async def delete_manifest(request: Request) -> Response:
    svc = services(request)
    name = repository(request)
    await svc.auth.require(request, scope(name, "delete"))
    reference = request.path_params["reference"]
    if is_digest(reference):
        await run_in_threadpool(svc.registry.delete_manifest, name, str(Digest.parse(reference)))
    else:
        if not is_valid_tag(reference):
            raise ManifestUnknown(detail={"reference": reference})
        await run_in_threadpool(svc.registry.delete_tag, name, reference)
    return Response(status_code=202, headers=headers())


routes = [
    Route("/v2/{name:path}/manifests/{reference}", get_manifest, methods=["GET", "HEAD"]),
    Route("/v2/{name:path}/manifests/{reference}", put_manifest, methods=["PUT"]),
    Route("/v2/{name:path}/manifests/{reference}", delete_manifest, methods=["DELETE"]),
]
