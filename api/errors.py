"""The one table of OCI errors: domain error -> (code, HTTP status), and its renderers.

Like Distribution's `registry/api/errcode/register.go`. Routes raise domain errors; the
handler installed by `install` renders `{"errors": [{"code", "message", "detail"}]}`. Anything
unexpected is logged and answered 500 `UNKNOWN`, and the server keeps serving.

Under `/api/` (the management API) the same table gives the status, and errors are RFC 9457
problem documents (`application/problem+json`: type, title, status, detail, and `context`
with the error's detail); request validation errors are 422 problems listing each error's
location and message (never the input, which may hold a password).
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus

import orjson
from eventsourcing.persistence import ConnectionUnavailableError
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Match

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
    # Not in the OCI table (which has no code for either): Distribution's UNAVAILABLE, and a
    # code of our own that names the condition; clients show the message of a code they do not know.
    (e.Unavailable, "UNAVAILABLE", 503),
    (e.StorageFull, "STORAGE_FULL", 507),
    (e.PaginationInvalid, "PAGINATION_NUMBER_INVALID", 400),
    (e.InvalidRequest, "UNKNOWN", 400),
    (e.NotFound, "UNKNOWN", 404),
    (e.Conflict, "UNKNOWN", 409),
]
PROBLEM_TYPE = "urn:dockyard:problem:"
BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="dockyard"'}


def code_for(error: e.DomainError) -> tuple[str, int]:
    for cls, code, status in OCI_ERRORS:
        if isinstance(error, cls):
            return code, status
    return "UNKNOWN", 500


def error_response(code: str, message: str, status: int, detail: object = None,
                   headers: dict[str, str] | None = None) -> Response:
    body = {"errors": [{"code": code, "message": message, "detail": detail}]}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def _is_api(request: Request) -> bool:
    return request.scope.get("path", "").startswith("/api/")


def problem_response(status: int, title: str, detail: str, problem_type: str = "about:blank",
                     headers: dict[str, str] | None = None, **extensions: object) -> Response:
    body = {"type": problem_type, "title": title, "status": status, "detail": detail}
    body.update({k: v for k, v in extensions.items() if v is not None})
    if status == 401:
        headers = {**(headers or {}), **BASIC_CHALLENGE}
    return Response(orjson.dumps(body), status_code=status, media_type="application/problem+json",
                    headers=headers)


def _domain_problem(exc: e.DomainError, status: int) -> Response:
    cls = type(exc)
    title = (cls.__doc__ or cls.__name__).strip().splitlines()[0]
    headers = _headers(exc)
    slug = re.sub(r"(?<!^)(?=[A-Z])", "-", cls.__name__).lower()
    return problem_response(status, title[:1].upper() + title[1:], exc.message, PROBLEM_TYPE + slug,
                            headers or None, context=exc.detail)


def _headers(exc: e.DomainError) -> dict[str, str]:
    """The error's own headers (a challenge), and Retry-After for a throttled client."""
    headers = dict(getattr(exc, "headers", None) or {})
    if isinstance(exc, e.TooManyRequests) and isinstance(exc.detail, dict) and "retryAfterSeconds" in exc.detail:
        headers["Retry-After"] = str(exc.detail["retryAfterSeconds"])
    return headers


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, e.DomainError)
    code, status = code_for(exc)
    if _is_api(request):
        return _domain_problem(exc, status)
    headers = _headers(exc) or None
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    return error_response(code, exc.message, status, exc.detail, headers)


_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route takes on this path (the router stops at the first route whose
    path matches, so that route's own `Allow` may be partial). Each method is tried against the
    route table as the router would (FastAPI nests included routers). Error path only."""
    allowed = ["OPTIONS"]
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return sorted(allowed)


def _method_not_allowed(request: Request) -> Response:
    """OPTIONS: 204 with the complete `Allow`; any other undeclared method: 405 with it."""
    allow = {"Allow": ", ".join(_allowed_methods(request))}
    if request.method == "OPTIONS":
        return Response(status_code=204, headers=allow)
    message = f"{request.method} is not allowed here"
    if _is_api(request):
        return problem_response(405, "Method Not Allowed", message, headers=allow)
    if request.method == "HEAD":
        return Response(status_code=405, headers=allow)
    return error_response("UNSUPPORTED", message, 405, {"method": request.method}, allow)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return _method_not_allowed(request)
    if not _is_api(request):
        return await http_exception_handler(request, exc)
    phrase = HTTPStatus(exc.status_code).phrase
    detail = exc.detail if isinstance(exc.detail, str) else phrase
    return problem_response(exc.status_code, phrase, detail, headers=getattr(exc, "headers", None))


async def _invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if not _is_api(request):
        return await request_validation_exception_handler(request, exc)
    errors = [{"loc": list(err.get("loc", ())), "msg": str(err.get("msg", "")), "type": str(err.get("type", ""))}
              for err in exc.errors()]
    detail = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in errors)
    return problem_response(422, "The request does not match the schema", detail or "invalid request",
                            PROBLEM_TYPE + "validation-failed", errors=errors)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    if _is_api(request):
        return problem_response(500, "Internal Server Error", "internal server error")
    return error_response("UNKNOWN", "internal server error", 500)


async def _busy(request: Request, exc: Exception) -> Response:
    # The event store's writer stayed busy past its wait (SQLite's single writer under many
    # concurrent pushes): nothing was written, and the client may simply retry — a 503, not a 500.
    log.warning("database busy on %s %s: %s", request.method, request.url.path, exc)
    busy = e.Unavailable("the registry is busy; retry", {"retryAfterSeconds": 1})
    busy.headers = {"Retry-After": "1"}  # type: ignore[attr-defined]
    return await _domain_error(request, busy)


async def _client_gone(request: Request, exc: Exception) -> Response:
    # The client closed the connection mid-request (e.g. an aborted PATCH): nothing to answer,
    # nothing to alarm anyone about. What it sent so far is handled by the route's own cleanup.
    log.info("client disconnected during %s %s", request.method, request.url.path)
    return Response(status_code=400)


def install(app: Starlette) -> None:
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(e.DomainError, _domain_error)
    app.add_exception_handler(ConnectionUnavailableError, _busy)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(Exception, _unexpected)
