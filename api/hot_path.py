"""The `/v2/` and `/auth/token` requests' own, shorter way through the app.

FastAPI wraps every request in seven layers before a route sees it: its telemetry check (an
OpenTelemetry provider lookup per request), Starlette's error middleware, a telemetry and a
body-limit middleware, the request meter, the exception middleware and an `AsyncExitStack` for
FastAPI routes' files, and then its router walks the routes. The registry's hot paths are plain
Starlette routes (api/v2/) matched first, and need only three of those: the 500 answer
(`ServerErrorMiddleware`, the same handler), the request meter and access log (api/metrics.py),
and the domain-error table (`ExceptionMiddleware`, the same handlers, api/errors.py).

`DockyardApp.__call__` matches an HTTP request under `/v2/` or `/auth/` against those routes, in
the router's own order and with the router's own `matches`; the first full match is served
through the three layers. Anything else — no full match (a 405 or 404 is the router's to
answer), a websocket, the lifespan — goes the whole way, as before. Answers, headers, metrics
and log lines are the same either way (tests/inprocess/test_hot_path.py).

Not taken when the app has a body limit (`max_body_size`) or a root path, or when FastAPI's
native telemetry is on (an OpenTelemetry provider configured when the first request came):
then every request goes the whole way, so their spans and limits cover `/v2/` as before.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

PREFIXES = ("/v2/", "/auth/")


class DockyardApp(FastAPI):
    _hot_routes: list[Route] | None = None
    _hot_stack: ASGIApp | None = None

    def _hot(self) -> list[Route]:
        """The leading plain Starlette routes under the prefixes, and the stack that serves
        them; built at the first request, when every route, handler and middleware is in."""
        routes: list[Route] = []
        enabled = (self.max_body_size is None and not self.root_path
                   and not self._native_telemetry.enabled())
        if enabled:
            for route in self.router.routes:
                if type(route) is not Route or not route.path.startswith(PREFIXES):
                    break  # only the leading run: what comes first in the router's order
                routes.append(route)
        handlers = {key: value for key, value in self.exception_handlers.items() if key not in (500, Exception)}
        error = self.exception_handlers.get(500) or self.exception_handlers.get(Exception)
        inner: ASGIApp = ExceptionMiddleware(_serve_matched, handlers=handlers, debug=self.debug)
        for middleware in reversed(self.user_middleware):  # the request meter (api/metrics.py)
            inner = middleware.cls(inner, *middleware.args, **middleware.kwargs)
        self._hot_stack = ServerErrorMiddleware(inner, handler=error, debug=self.debug)
        self._hot_routes = routes
        return routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIXES):
            routes = self._hot_routes if self._hot_routes is not None else self._hot()
            for route in routes:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child)
                    scope["app"], scope["router"], scope[_ROUTE] = self, self.router, route
                    assert self._hot_stack is not None
                    await self._hot_stack(scope, receive, send)
                    return
        await super().__call__(scope, receive, send)


_ROUTE = "dockyard.hot_route"


async def _serve_matched(scope: Scope, receive: Receive, send: Send) -> None:
    route: Any = scope[_ROUTE]
    await route.handle(scope, receive, send)
