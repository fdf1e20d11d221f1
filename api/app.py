"""`create_app(settings)`: the HTTP application, serving the object graph that `dockyard.bootstrap`
builds (`build_services`, in the app's lifespan).

Nothing is constructed at import time. `factory()` is what `uvicorn --factory` calls in each
worker process: it reads the settings from `DOCKYARD_*` variables.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.api import access_log, errors, metrics, portal, tls, v0, v2
from dockyard.api.auth import routes as auth_routes
from dockyard.api.hot_path import DockyardApp
from dockyard.api.read_threads import read_in_thread
from dockyard.api.recent_logs import RecentLogs
from dockyard.api.settings import Settings
from dockyard.api.shared_logs import SharedLogs
from dockyard.api.v2.common import Services
from dockyard.bootstrap import build_services
from dockyard.commands import database
from dockyard.gc import schedule as housekeeping
from dockyard.gc.collector import BackgroundRuns
from dockyard.projections.loop_reads import LoopReads
from dockyard.storage import BlobStore

log = logging.getLogger("dockyard")


async def _health(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


def _store_ok(store: BlobStore) -> bool:
    try:
        store.ping()
        return True
    except Exception as exc:  # not ready, whatever the reason; the reason goes to the log only
        log.warning("readiness check: blob storage unavailable: %s", exc)
        return False


async def _ready(request: Request) -> Response:
    """Readiness: 200 when the database and the blob store answer, else 503 (which of the two
    failed, never why: no credentials needed, nothing leaked). `/healthz` is liveness only."""
    svc = request.app.state.services
    checks = {"database": await run_in_threadpool(database.ping, svc.registry.recorder.datastore),
              "storage": await run_in_threadpool(_store_ok, svc.store)}
    ready = all(checks.values())
    body = {"status": "ready" if ready else "unavailable",
            "checks": {name: "ok" if ok else "unavailable" for name, ok in checks.items()}}
    return Response(orjson.dumps(body), status_code=200 if ready else 503, media_type="application/json",
                    headers={"Cache-Control": "no-store"})


def _certificate_follower(settings: Settings, services: Services) -> tls.CertificateFollower | None:
    """With a certificate Dockyard generated (serve --tls, no --tls-cert), one that follows the domain name."""
    if not settings.tls or settings.tls_cert:
        return None
    return tls.CertificateFollower(services.secrets, services.general.domain_name, settings.host,
                                   Path(settings.data_dir) / "tls").start()


def create_app(settings: Settings, *, clock: Callable[[], float] = time.time) -> FastAPI:
    """The app; its lifespan builds the services (`app.state.services`) and the housekeeping.
    Tests pass `clock` to move time instead of waiting (tests/inprocess/conftest.py)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = build_services(settings, clock)
        # The pull path's reads from the loop without a thread hop (projections.loop_reads).
        app.state.loop_reads = LoopReads(app.state.services.registry.datastore, app.state.services.registry.dialect,
                                         read_in_thread)
        app.state.gc_runs = BackgroundRuns()  # GC runs started through the API, completed in threads
        app.state.services.accounts.failed_listeners.append(app.state.metrics.login_failed)
        app.state.services.read_side.start()  # followed projections: one leader across processes
        app.state.services.webhook_delivery.start()  # one leader across processes, too
        shared_logs = SharedLogs(app.state.services.registry.datastore, app.state.services.registry.dialect,
                                 on_drop=app.state.metrics.log_lines_dropped.inc).start()
        app.state.shared_logs = shared_logs  # every replica's recent lines (the Logs view)
        app.state.recent_logs.sinks.append(shared_logs.offer)
        app.state.recent_logs.attach()
        follower = _certificate_follower(settings, app.state.services)
        scheduler = housekeeping.start(app.state.services.uploads,
                                       purge_age_hours=settings.upload_purge_age_hours,
                                       purge_interval_hours=settings.upload_purge_interval_hours)
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            app.state.gc_runs.stop()  # a sweep ends after its current blob, recorded as stopped
            app.state.services.webhook_delivery.stop()
            app.state.services.read_side.stop()
            if follower is not None:
                follower.stop()
            app.state.recent_logs.detach()
            app.state.recent_logs.sinks.remove(shared_logs.offer)
            shared_logs.stop()
            await app.state.loop_reads.close()
            app.state.services.registry.close()

    # DockyardApp: FastAPI, with a short way for the /v2/ and /auth/ hot routes (api/hot_path.py).
    app = DockyardApp(title="Dockyard", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="A trusted on-premises container image registry on an event log.")
    errors.install(app)
    # The /v2/ hot paths are plain Starlette routes (FastAPI's validation adds ~35 µs each), and
    # they come first: a request is matched against the routes in order, and walking the
    # management API's included routers before reaching /v2/ cost ~3.5 % of a manifest GET
    # (benchmarks/RESULTS.md). No other route lies under /v2/ or /auth/.
    app.router.routes[:0] = [*v2.routes(), *auth_routes.routes()]  # /v2/…, /auth/token
    # The management API, and its console at /docs from local assets (no CDN).
    v0.install(app, settings.password_min_length)
    app.router.routes.append(Route("/healthz", _health, methods=["GET"]))
    app.router.routes.append(Route("/readyz", _ready, methods=["GET"]))
    metrics.install(app).listeners.append(access_log.log_request)  # GET /metrics; every request metered and logged
    app.state.recent_logs = RecentLogs(replica=settings.replica_name)
    portal.install(app)  # the web portal at `/`, after every API route
    metrics.tag_routes(app)  # after every route: each names its template for the request metrics
    return app


def factory() -> FastAPI:
    return create_app(Settings())
