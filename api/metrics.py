"""`/metrics` in Prometheus' text format (prometheus-client), for every worker of a `dockyard serve`.

What one process counts itself, in `RequestMetrics` (an ASGI middleware around the whole app):
requests by route template, method and status; their latency; bytes received and sent; and,
through `Accounts.failed_listeners`, failed sign-ins. With several uvicorn workers these go
through prometheus-client's multiprocess mode: `dockyard serve` sets PROMETHEUS_MULTIPROC_DIR to
a folder it empties at start, each worker writes its values there, and a scrape of any worker
sums them all (`MultiProcessCollector`). Without that variable (tests, `create_app` alone) each
app counts in its own registry.

What the whole registry knows, read at scrape time from the shared database and blob store (so
every replica answers the same, and nothing on the hot path pays for it), in `RegistryCollector`:
events appended (the log's head), each followed projection's lag behind it, GC runs and bytes
freed (from the GcRun events), and upload sessions in progress.

Label values are bounded: a request that matched no route is counted under `route="<unmatched>"`,
never under its path.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("dockyard.api")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "<unmatched>"


def _multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


class RequestMetrics:
    """The per-process instruments and the ASGI middleware that feeds them.

    The /v2/ hot path pays for two clock reads, a few integer additions and one cached label
    lookup per request: the labelled children are kept in a dict keyed by the label tuple, since
    prometheus-client's own `.labels()` takes a lock and rebuilds the key every call."""

    def __init__(self) -> None:
        # In multiprocess mode the values live in files, not in a registry; else in this app's own.
        self.registry = None if _multiprocess() else CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.requests = Counter("dockyard_http_requests", "HTTP requests by route template, method and status",
                                ["route", "method", "status"], registry=reg)
        self.latency = Histogram("dockyard_http_request_duration_seconds",
                                 "Time from request start to the end of the response body",
                                 ["route", "method"], registry=reg,
                                 buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60))
        self.received = Counter("dockyard_http_received_bytes", "Request body bytes received", registry=reg)
        self.sent = Counter("dockyard_http_sent_bytes", "Response body bytes sent", registry=reg)
        self.failed_logins = Counter("dockyard_failed_logins", "Sign-ins refused for wrong credentials",
                                     registry=reg)
        self.log_lines_dropped = Counter("dockyard_log_lines_dropped",
                                         "Log lines not gathered in the shared Logs view (database away or "
                                         "busy, or the buffer full); the terminal log still has them",
                                         registry=reg)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        # Also told of each finished request (scope, status, bytes received, bytes sent, seconds):
        # the access log, so that the hot path is wrapped once.
        self.listeners: list[Callable[[Scope, int, int, int, float], None]] = []

    def login_failed(self, user: str, address: str) -> None:
        self.failed_logins.inc()

    def _child(self, route: str, method: str, status: int) -> tuple[Any, Any]:
        key = (route, method, status)
        child = self._children.get(key)
        if child is None:
            child = (self.requests.labels(route, method, str(status)), self.latency.labels(route, method))
            self._children[key] = child
        return child

    def observe(self, scope: Scope, status: int, received: int, sent: int, seconds: float) -> None:
        template = scope.get(ROUTE_KEY) or _fastapi_template(scope)
        counter, histogram = self._child(template, scope.get("method", "GET"), status)
        counter.inc()
        histogram.observe(seconds)
        if received:
            self.received.inc(received)
        if sent:
            self.sent.inc(sent)

    def middleware(self, app: ASGIApp) -> ASGIApp:
        async def metered(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            start = time.perf_counter()
            counts = [0, 0, 500]  # bytes received, bytes sent, status (500 if the app raised)

            async def counting_receive() -> Message:
                message = await receive()
                if message["type"] == "http.request":
                    counts[0] += len(message.get("body", b""))
                return message

            async def counting_send(message: Message) -> None:
                kind = message["type"]
                if kind == "http.response.start":
                    counts[2] = message["status"]
                elif kind == "http.response.body":
                    counts[1] += len(message.get("body", b""))
                elif kind == "http.response.zerocopysend":  # a file the server sends itself (api/zerocopy.py)
                    counts[1] += message.get("count") or 0
                await send(message)

            try:
                await app(scope, counting_receive, counting_send)
            finally:
                seconds = time.perf_counter() - start
                self.observe(scope, counts[2], counts[0], counts[1], seconds)
                for listener in self.listeners:
                    listener(scope, counts[2], counts[0], counts[1], seconds)
        return metered


ROUTE_KEY = "dockyard.route"


def tag_routes(app: Any) -> None:
    """Make each plain Starlette route and mount of `app` (the /v2/ hot paths, /auth/token,
    /healthz, the portal's assets) write its path template into the request scope when it
    handles a request: one dict store, where finding the template afterwards would mean matching
    the path against every route again. Call once every route is added."""
    from starlette.routing import Mount, Route

    for route in app.router.routes:
        if isinstance(route, Route | Mount) and not getattr(route.app, "_dockyard_tagged", False):
            template = route.path if isinstance(route, Route) else route.path + "/{path}"
            route.app = _tagged(route.app, template)


def _tagged(inner: ASGIApp, template: str) -> ASGIApp:
    async def tagged(scope: Scope, receive: Receive, send: Send) -> None:
        scope[ROUTE_KEY] = template
        await inner(scope, receive, send)
    tagged._dockyard_tagged = True  # type: ignore[attr-defined]
    return tagged


def _fastapi_template(scope: Scope) -> str:
    """The template of a FastAPI route (the management API, the portal's pages), prefixes
    included: the route FastAPI chose for the request records it. Not the hot path."""
    try:
        from fastapi.routing import _get_scope_effective_route_context

        context = _get_scope_effective_route_context(scope)
    except Exception:  # noqa: BLE001 — FastAPI's internals moved: fall back to the route object
        context = None
    template = getattr(context, "path_format", None) or getattr(scope.get("route"), "path_format", None)
    return str(template) if template else UNMATCHED


class RegistryCollector(Collector):
    """Figures of the whole registry, read from the database and blob store when scraped.

    GC totals are folded incrementally from the GcRun.Finished events after the last one seen,
    so a scrape reads only what is new."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._gc_seen = 0
        self._gc_runs = {"done": 0, "failed": 0}
        self._gc_freed = 0

    def _gc(self, registry: Any) -> None:
        topics = ["dockyard.GcRun.Finished"]
        while batch := registry.recorder.select_notifications(self._gc_seen, 1000, topics=topics,
                                                              inclusive_of_start=False):
            for n in batch:
                e: Any = registry.mapper.to_domain_event(n)
                self._gc_runs["failed" if e.errors else "done"] += 1
                self._gc_freed += int(e.bytes_freed or 0)
            self._gc_seen = batch[-1].id

    def collect(self) -> Iterator[Any]:
        svc = getattr(self.app.state, "services", None)
        if svc is None:  # not started yet
            return
        head = svc.read_side.head()
        yield CounterMetricFamily("dockyard_events_appended", "Events in the log (its head position)", value=head)
        lag = GaugeMetricFamily("dockyard_projection_lag_events", "Events not yet folded, per followed read model",
                                labels=["projection"])
        for name in svc.read_side.runners:
            row = svc.read_side.positions.get(name) or {"position": 0}
            lag.add_metric([name], max(0, head - int(row["position"])))
        yield lag
        self._gc(svc.registry)
        runs = CounterMetricFamily("dockyard_gc_runs", "Finished garbage-collection runs", labels=["outcome"])
        for outcome, n in self._gc_runs.items():
            runs.add_metric([outcome], n)
        yield runs
        yield CounterMetricFamily("dockyard_gc_freed_bytes", "Bytes freed by garbage collection",
                                  value=self._gc_freed)
        try:
            uploads = len(svc.uploads.session_ids())
        except Exception:  # noqa: BLE001 — a store that does not answer must not fail the scrape
            log.warning("metrics: cannot list upload sessions", exc_info=True)
        else:
            yield GaugeMetricFamily("dockyard_uploads_in_progress", "Upload sessions open in the blob store",
                                    value=uploads)


def scrape_registry(app: Any, requests: RequestMetrics) -> CollectorRegistry:
    """The registry a scrape renders: this process's (or all workers') request figures and the
    registry-wide ones."""
    registry = CollectorRegistry()
    if requests.registry is None:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Forward(requests.registry))
    registry.register(RegistryCollector(app))
    return registry


class _Forward(Collector):
    def __init__(self, inner: CollectorRegistry) -> None:
        self.inner = inner

    def collect(self) -> Iterator[Any]:
        yield from self.inner.collect()


def install(app: Any) -> RequestMetrics:
    """Meter every request of `app` and serve `GET /metrics` (no credentials, as /healthz: it
    tells counts, never names, and scrapers rarely carry tokens)."""
    from starlette.concurrency import run_in_threadpool
    from starlette.routing import Route

    requests = RequestMetrics()
    scraped = scrape_registry(app, requests)

    async def metrics(request: Request) -> Response:
        body = await run_in_threadpool(generate_latest, scraped)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    app.router.routes.append(Route("/metrics", metrics, methods=["GET"], include_in_schema=False))
    app.add_middleware(_Middleware, metrics=requests)
    app.state.metrics = requests
    return requests


class _Middleware:
    """`RequestMetrics.middleware` in the shape `app.add_middleware` takes."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self.call = metrics.middleware(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.call(scope, receive, send)
