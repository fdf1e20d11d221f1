"""The `/v2/` and `/auth/token` requests' own, shorter way through the app, on public API only.

FastAPI wraps every request in seven layers before a route sees it (its telemetry check,
Starlette's error middleware, a telemetry and a body-limit middleware, the request meter, the
exception middleware, an `AsyncExitStack` for FastAPI routes' files), then its router walks the
routes. The registry's hot paths are plain Starlette routes (api/v2/, matched first) and need
three of those: the 500 answer (`ServerErrorMiddleware` with the app's handler), the app's own
middleware (the request meter and access log, api/metrics.py) and the domain-error table
(`ExceptionMiddleware` with the app's handlers, api/errors.py).

`DockyardApp.__call__` matches an HTTP request under `/v2/` or `/auth/` against the leading
plain routes under those prefixes, in the router's order and with each route's own public
`matches`; the first full match is served through those three layers, built from Starlette's
public classes and the app's public `exception_handlers`, `user_middleware` and `debug`. Anything
else — no full match (a 405 or 404 is the router's to answer), a websocket, the lifespan — goes
the whole way. Answers, headers, metrics and access lines are the same either way
(tests/inprocess/test_hot_path.py).

Not taken when the app has a root path or (FastAPI versions that have one) a body limit. Requests
that take it are not seen by FastAPI's own OpenTelemetry instrumentation, which Dockyard never
configures; the request meter and the access log see every one.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

PREFIXES = ("/v2/", "/auth/")
ROUTE_KEY = "dockyard.hot_route"  # the route the short way matched, for the innermost layer


class DockyardApp(FastAPI):
    """FastAPI with the short way for `/v2/` and `/auth/`. `hot_routes` (None until the first
    request) are the routes it serves; an empty list sends every request the whole way."""

    hot_routes: list[Route] | None = None
    hot_stack: ASGIApp | None = None

    def build_hot_path(self) -> list[Route]:
        """The leading plain Starlette routes under the prefixes, and the stack that serves them:
        built at the first request, when every route, handler and middleware is in."""
        routes: list[Route] = []
        if not self.root_path and getattr(self, "max_body_size", None) is None:
            for route in self.router.routes:
                if type(route) is not Route or not route.path.startswith(PREFIXES):
                    break  # only the leading run: what comes first in the router's order
                routes.append(route)
        handlers = {key: value for key, value in self.exception_handlers.items() if key not in (500, Exception)}
        error = self.exception_handlers.get(500) or self.exception_handlers.get(Exception)
        inner: ASGIApp = ExceptionMiddleware(_serve_matched, handlers=handlers, debug=self.debug)
        for middleware in reversed(self.user_middleware):  # the request meter (api/metrics.py)
            cls, args, kwargs = middleware
            inner = cls(inner, *args, **kwargs)
        self.hot_stack = ServerErrorMiddleware(inner, handler=error, debug=self.debug)
        self.hot_routes = routes
        return routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIXES):
            routes = self.hot_routes if self.hot_routes is not None else self.build_hot_path()
            for route in routes:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child)
                    scope["app"], scope["router"], scope[ROUTE_KEY] = self, self.router, route
                    assert self.hot_stack is not None
                    await self.hot_stack(scope, receive, send)
                    return
        await super().__call__(scope, receive, send)


async def _serve_matched(scope: Scope, receive: Receive, send: Send) -> None:
    route: Any = scope[ROUTE_KEY]
    await route.handle(scope, receive, send)
