"""`/auth/token`, the realm of the Docker token flow: GET with optional Basic credentials
(https://distribution.github.io/distribution/spec/auth/token/) and the OAuth2 form POST
(password or refresh_token grant; `access_type=offline` adds a refresh token).

Refusals are domain errors, rendered by the one error table (`api.errors`): 401 for wrong
credentials or a dead refresh token, 429 (with Retry-After) while a user is throttled, 400 for a
request this service cannot serve (another `service`, an unknown grant) — each with its own status.
"""

from __future__ import annotations

from functools import partial

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.api.auth.credentials import Basic, client_address, parse_authorization
from dockyard.api.auth.guard import Auth
from dockyard.api.auth.scopes import parse_scopes
from dockyard.api.read_threads import read_in_thread
from dockyard.domain.access import ANONYMOUS, Principal
from dockyard.domain.errors import InvalidRequest, Unauthorized


def _auth(request: Request) -> Auth:
    return request.app.state.services.auth


def _check_service(auth: Auth, service: str | None) -> None:
    """A token this service signs is good only for itself (`aud`): one asked for another
    registry would be useless there, or misused."""
    if service is not None and service != auth.settings.token_service:
        raise InvalidRequest(f"this token service is {auth.settings.token_service!r}; "
                               f"it issues no tokens for service {service!r}", {"service": service})


async def token(request: Request) -> Response:
    """GET /auth/token?service=...&scope=...[&offline_token=true] with optional Basic credentials."""
    auth = _auth(request)
    _check_service(auth, request.query_params.get("service"))
    credentials = parse_authorization(request.headers.get("authorization", ""))
    if credentials is not None and not isinstance(credentials, Basic):
        raise Unauthorized("the token service takes HTTP Basic credentials or none")
    basic = credentials if isinstance(credentials, Basic) else None
    address, requested = client_address(request), request.query_params.getlist("scope")

    def sign_in_and_issue() -> tuple[Principal, dict[str, object]]:
        # One thread hop for the sign-in and the token (each reads the read model): this is the
        # request every `docker pull` of a new repository makes.
        principal: Principal = ANONYMOUS
        if basic is not None:
            found = auth.accounts.authenticate(basic.user, basic.password, address)
            if found is None:
                raise Unauthorized("invalid username or password")
            principal = found
        return principal, auth.tokens.issue(principal, parse_scopes(requested))

    principal, issued = await read_in_thread(sign_in_and_issue)
    auth.bind(request, principal)
    if request.query_params.get("offline_token") == "true" and not principal.is_anonymous:
        issued["refresh_token"] = await run_in_threadpool(
            partial(auth.tokens.issue_refresh, principal, client_id=request.query_params.get("client_id")))
    return Response(orjson.dumps(issued), media_type="application/json")


async def oauth_token(request: Request) -> Response:
    """POST /auth/token, the OAuth2 form: grant_type `password` (username, password) or
    `refresh_token` (which rotates it: the response holds the next one — except for the docker
    CLI's identity token, `client_id=docker`, which stays the same: `domain.refresh_token`)."""
    auth = _auth(request)
    form = await request.form()
    service = form.get("service")
    _check_service(auth, None if service is None else str(service))
    grant = str(form.get("grant_type") or "")
    scopes = parse_scopes([str(v) for v in form.getlist("scope")])
    refresh_token = None
    if grant == "password":
        credentials = Basic(str(form.get("username") or ""), str(form.get("password") or ""))
        principal = await auth.authenticate(credentials, request)  # TooManyRequests: 429
        if principal is None:
            raise Unauthorized("invalid username or password")
    elif grant == "refresh_token":
        refreshed = await run_in_threadpool(auth.tokens.refresh, str(form.get("refresh_token") or ""),
                                            client_address(request))
        if refreshed is None:
            raise Unauthorized("invalid refresh token")
        principal, refresh_token = refreshed
    else:
        raise InvalidRequest("grant_type must be password or refresh_token", {"grant_type": grant})
    issued = await run_in_threadpool(auth.tokens.issue, principal, scopes)
    auth.bind(request, principal)
    body = {"access_token": issued["access_token"], "expires_in": issued["expires_in"],
            "issued_at": issued["issued_at"], "scope": " ".join(str(s) for s in scopes)}
    if refresh_token is None and form.get("access_type") == "offline":
        client_id = form.get("client_id")
        refresh_token = await run_in_threadpool(
            partial(auth.tokens.issue_refresh, principal, client_id=None if client_id is None else str(client_id)))
    if refresh_token is not None:
        body["refresh_token"] = refresh_token
    return Response(orjson.dumps(body), media_type="application/json")


def routes() -> list[Route]:
    return [Route("/auth/token", token, methods=["GET"]), Route("/auth/token", oauth_token, methods=["POST"])]
