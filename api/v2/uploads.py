"""Blob uploads: `POST /v2/<name>/blobs/uploads/` (start, monolithic, or mount), then
`PATCH|PUT|GET|DELETE /v2/<name>/blobs/uploads/<id>`."""

from __future__ import annotations

import re

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.api.auth import Caller
from dockyard.api.streaming import pump
from dockyard.api.v2.common import Services, headers, location, repository, scope, services
from dockyard.commands.uploads import Append
from dockyard.domain.digest import Digest
from dockyard.domain.errors import BlobUploadInvalid, DigestInvalid, RangeInvalid
from dockyard.domain.names import check_repository_name, is_valid_repository_name

# At most 19 digits (int64, as Distribution parses them): longer is a 416, not a 500 from int().
_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?(\d{1,19})-(\d{1,19})(?:/(?:\d{1,19}|\*))?$")


def _session_headers(request: Request, name: str, upload_id: str, size: int) -> dict[str, str]:
    return headers(Location=location(request, f"/v2/{name}/blobs/uploads/{upload_id}"), Range=f"0-{max(size - 1, 0)}",
                   Docker_Upload_UUID=upload_id, Content_Length=0)


def _created(request: Request, name: str, digest: str) -> Response:
    return Response(status_code=201, headers=headers(
        Location=location(request, f"/v2/{name}/blobs/{digest}"), Docker_Content_Digest=digest, Content_Length=0))


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    if not value.isdigit() or len(value) > 19:
        raise BlobUploadInvalid("invalid Content-Length")
    return int(value)


def _chunk_start(request: Request) -> int | None:
    """The offset a chunk's `Content-Range` names (checked against its length), or None without one."""
    content_range = request.headers.get("content-range")
    if not content_range:
        return None
    m = _CONTENT_RANGE.match(content_range.strip())
    if not m:
        raise RangeInvalid("invalid Content-Range", {"contentRange": content_range})
    start, end = int(m.group(1)), int(m.group(2))
    length = _declared_length(request)
    if end < start or (length is not None and length != end - start + 1):
        raise RangeInvalid("Content-Range does not match Content-Length", {"contentRange": content_range})
    return start


async def _append_body(svc: Services, request: Request, name: str, upload_id: str,
                       start: int | None) -> int:
    """Stream the request body onto the session; return the session's new size."""
    append: Append = await run_in_threadpool(svc.uploads.append, name, upload_id, start)
    try:
        await pump(request.stream(), append.write, _declared_length(request))
    except BaseException:
        await run_in_threadpool(append.abort)
        raise
    return await run_in_threadpool(append.close)


async def _try_mount(svc: Services, request: Request, caller: Caller, name: str) -> Response | None:
    digest = str(Digest.parse(request.query_params["mount"]))
    source = request.query_params.get("from")
    if source:
        candidates = [check_repository_name(source)]
    else:  # OCI 1.1: without `from`, mount from any repository the caller may read
        candidates = await run_in_threadpool(svc.registry_view.repositories_linking, digest)
    for candidate in candidates:
        if candidate == name or not await run_in_threadpool(svc.auth.permits, caller, scope(candidate, "pull")):
            continue
        if await run_in_threadpool(svc.uploads.mount, name, digest, candidate) is not None:
            return _created(request, name, digest)
    return None


async def start_upload(request: Request) -> Response:
    svc = services(request)
    name = repository(request)
    source = request.query_params.get("from") if "mount" in request.query_params else None
    also = [scope(source, "pull")] if source and source != name and is_valid_repository_name(source) else []
    caller = await svc.auth.require(request, scope(name, "pull", "push"), also)
    if "mount" in request.query_params:
        mounted = await _try_mount(svc, request, caller, name)
        if mounted is not None:
            return mounted
    digest = request.query_params.get("digest")
    wanted = None if digest is None else str(Digest.parse(digest))  # before a session exists
    upload_id = await run_in_threadpool(svc.uploads.start, name)
    if wanted is not None:  # monolithic: POST with the whole blob
        await _append_body(svc, request, name, upload_id, None)
        await run_in_threadpool(svc.uploads.finish, name, upload_id, wanted)
        return _created(request, name, wanted)
    return Response(status_code=202, headers=_session_headers(request, name, upload_id, 0))


async def patch_upload(request: Request) -> Response:
    svc = services(request)
    name = repository(request)
    await svc.auth.require(request, scope(name, "pull", "push"))
    upload_id = request.path_params["upload_id"]
    size = await _append_body(svc, request, name, upload_id, _chunk_start(request))
    return Response(status_code=202, headers=_session_headers(request, name, upload_id, size))


async def finish_upload(request: Request) -> Response:
    svc = services(request)
    name = repository(request)
    await svc.auth.require(request, scope(name, "pull", "push"))
    upload_id = request.path_params["upload_id"]
    digest = request.query_params.get("digest")
    if not digest:
        raise DigestInvalid("the digest query parameter is required")
    wanted = str(Digest.parse(digest))
    await run_in_threadpool(svc.uploads.status, name, upload_id)
    if _declared_length(request) != 0:  # a final chunk may come with the PUT, in order (416 otherwise)
        await _append_body(svc, request, name, upload_id, _chunk_start(request))
    await run_in_threadpool(svc.uploads.finish, name, upload_id, wanted)
    return _created(request, name, wanted)


async def upload_status(request: Request) -> Response:
    svc = services(request)
    name = repository(request)
    await svc.auth.require(request, scope(name, "pull", "push"))
    status = await run_in_threadpool(svc.uploads.status, name, request.path_params["upload_id"])
    return Response(status_code=204, headers=_session_headers(request, name, status.upload_id, status.size))


async def cancel_upload(request: Request) -> Response:
    svc = services(request)
    name = repository(request)
    await svc.auth.require(request, scope(name, "pull", "push"))
    await run_in_threadpool(svc.uploads.cancel, name, request.path_params["upload_id"])
    return Response(status_code=204, headers=headers(Content_Length=0))


routes = [
    Route("/v2/{name:path}/blobs/uploads/", start_upload, methods=["POST"]),
    Route("/v2/{name:path}/blobs/uploads", start_upload, methods=["POST"]),
    Route("/v2/{name:path}/blobs/uploads/{upload_id}", patch_upload, methods=["PATCH"]),
    Route("/v2/{name:path}/blobs/uploads/{upload_id}", finish_upload, methods=["PUT"]),
    Route("/v2/{name:path}/blobs/uploads/{upload_id}", upload_status, methods=["GET"]),
    Route("/v2/{name:path}/blobs/uploads/{upload_id}", cancel_upload, methods=["DELETE"]),
]
