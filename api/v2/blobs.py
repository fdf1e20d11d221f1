"""`GET|HEAD|DELETE /v2/<name>/blobs/<digest>`."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from dockyard.api.read_threads import read_in_thread
from dockyard.api.streaming import BATCH, BlobFileResponse, RangeNotSatisfiable, single_range
from dockyard.api.v2.common import headers, repository, scope, services
from dockyard.domain.digest import Digest
from dockyard.domain.errors import BlobUnknown
from dockyard.storage import BlobNotFound, blob_key


async def get_blob(request: Request) -> Response:
    svc = services(request)
    name = repository(request)
    await svc.auth.require(request, scope(name, "pull"))
    digest = str(Digest.parse(request.path_params["digest"]))
    size = await read_in_thread(svc.registry_view.blob_size, name, digest)
    if size is None:
        raise BlobUnknown(detail={"digest": digest})
    key = blob_key(digest)
    extra = headers(Docker_Content_Digest=digest)
    path = svc.store.local_path(key)
    if path is not None:
        return BlobFileResponse(path, media_type="application/octet-stream", headers=extra)
    if request.method == "GET" and (url := svc.store.redirect_url(key)):
        return RedirectResponse(url, status_code=307, headers=extra)
    extra["Content-Length"] = str(size)
    extra["Accept-Ranges"] = "bytes"  # as the filesystem's answer says
    if request.method == "HEAD":
        return Response(status_code=200, media_type="application/octet-stream", headers=extra)

    # A Range (a client resuming a pull) is served from the backend's own offset read; the
    # filesystem's FileResponse above handles it itself, multipart included.
    span = None
    if "range" in request.headers:
        try:
            span = single_range(request.headers["range"], size)
        except RangeNotSatisfiable:
            return Response(status_code=416, media_type="text/plain",
                            headers={**extra, "Content-Range": f"bytes */{size}", "Content-Length": "0"})
    first, last = span if span is not None else (0, size - 1)
    try:  # opened before the answer starts: a blob swept since the link was read is a 404, not a 500
        reader = await run_in_threadpool(svc.store.open_read, key, first)
    except BlobNotFound:
        raise BlobUnknown(detail={"digest": digest}) from None

    def chunks():  # noqa: ANN202 - a blocking generator Starlette runs in its threadpool
        left = last - first + 1
        with reader as f:
            while left > 0 and (data := f.read(min(BATCH, left))):
                left -= len(data)
                yield data

    if span is None:
        return StreamingResponse(chunks(), media_type="application/octet-stream", headers=extra)
    extra.update({"Content-Length": str(last - first + 1), "Content-Range": f"bytes {first}-{last}/{size}"})
    return StreamingResponse(chunks(), status_code=206, media_type="application/octet-stream", headers=extra)


async def delete_blob(request: Request) -> Response:
    svc = services(request)
    name = repository(request)
    await svc.auth.require(request, scope(name, "delete"))
    digest = str(Digest.parse(request.path_params["digest"]))
    await run_in_threadpool(svc.registry.delete_blob, name, digest)
    return Response(status_code=202, headers=headers(Docker_Content_Digest=digest))


routes = [
    Route("/v2/{name:path}/blobs/{digest}", get_blob, methods=["GET", "HEAD"]),
    Route("/v2/{name:path}/blobs/{digest}", delete_blob, methods=["DELETE"]),
]
