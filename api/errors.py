"""The one table of OCI errors: domain error -> (code, HTTP status), and its renderer.

Like Distribution's `registry/api/errcode/register.go`. Routes raise domain errors; the
handler installed by `install` renders `{"errors": [{"code", "message", "detail"}]}`. Anything
unexpected is logged and answered 500 `UNKNOWN`, and the server keeps serving.
"""

from __future__ import annotations

import logging

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from dockyard.domain import errors as e

log = logging.getLogger("dockyard.api")

# (code, status). Order matters only for subclasses: the first match wins.
OCI_ERRORS: list[tuple[type[e.DomainError], str, int]] = [
    (e.RangeInvalid, "BLOB_UPLOAD_INVALID", 416),
    (e.BlobUnknown, "BLOB_UNKNOWN", 404),
    (e.BlobUploadInvalid, "BLOB_UPLOAD_INVALID", 400),
    (e.BlobUploadUnknown, "BLOB_UPLOAD_UNKNOWN", 404),
    (e.DigestInvalid, "DIGEST_INVALID", 400),
    (e.ManifestBlobUnknown, "MANIFEST_BLOB_UNKNOWN", 400),
    (e.ManifestInvalid, "MANIFEST_INVALID", 400),
    (e.ManifestUnknown, "MANIFEST_UNKNOWN", 404),
    (e.ManifestTooLarge, "SIZE_INVALID", 413),
    (e.NameInvalid, "NAME_INVALID", 400),
    (e.NameUnknown, "NAME_UNKNOWN", 404),
    (e.SizeInvalid, "SIZE_INVALID", 400),
    (e.Unauthorized, "UNAUTHORIZED", 401),
    (e.Denied, "DENIED", 403),
    (e.Unsupported, "UNSUPPORTED", 405),
    (e.TooManyRequests, "TOOMANYREQUESTS", 429),
    (e.PaginationInvalid, "PAGINATION_NUMBER_INVALID", 400),
]


def code_for(error: e.DomainError) -> tuple[str, int]:
    for cls, code, status in OCI_ERRORS:
        if isinstance(error, cls):
            return code, status
    return "UNKNOWN", 500


def error_response(code: str, message: str, status: int, detail: object = None,
                   headers: dict[str, str] | None = None) -> Response:
    body = {"errors": [{"code": code, "message": message, "detail": detail}]}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, e.DomainError)
    code, status = code_for(exc)
    headers = getattr(exc, "headers", None)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    return error_response(code, exc.message, status, exc.detail, headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response("UNKNOWN", "internal server error", 500)


def install(app: Starlette) -> None:
    app.add_exception_handler(e.DomainError, _domain_error)
    app.add_exception_handler(Exception, _unexpected)
