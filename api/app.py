"""`create_app(settings)`: the one place that builds the object graph (as cosmicpython's bootstrap).

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
from dockyard.api.auth import Auth
from dockyard.api.auth import routes as auth_routes
from dockyard.api.portal.sessions import SessionStore
from dockyard.api.recent_logs import RecentLogs
from dockyard.api.secret_store import SecretStore
from dockyard.api.shared_logs import SharedLogs
from dockyard.api.settings import Settings
from dockyard.api.v2.common import Services
from dockyard.commands import database
from dockyard.commands.access_tokens import AccessTokens
from dockyard.commands.accounts import Accounts
from dockyard.commands.audit_chain import start_chain
from dockyard.commands.general_settings import General
from dockyard.commands.identity import Identity
from dockyard.commands.management import Management
from dockyard.commands.persistence import event_store_env
from dockyard.commands.registry import Registry
from dockyard.commands.storage_settings import StorageSetting
from dockyard.commands.uploads import UploadSessions
from dockyard.commands.webhooks import Webhooks
from dockyard.gc import schedule as housekeeping
from dockyard.projections.read_side import ReadSide
from dockyard.projections.webhook_delivery import WebhookDelivery
from dockyard.storage import BlobStore, open_store
from dockyard.storage.switchable import SwitchableStore

log = logging.getLogger("dockyard")


def build_services(settings: Settings, clock: Callable[[], float] = time.time) -> Services:
    """`clock` (seconds since the epoch) is what token expiry and upload ages are measured by."""
    registry = Registry(event_store_env(settings.data_dir, settings.database_url))
    secrets = SecretStore(registry)
    # Settings > Storage, when chosen at run time, wins over --storage; every process follows changes.
    storage_setting = StorageSetting(registry, secrets, open_store)
    store = SwitchableStore(storage_setting.open_current() if storage_setting.version() else
                            open_store(settings.storage_url), storage_setting.version, storage_setting.open_current)
    storage_setting.listeners.append(store.refresh)
    start_chain(registry)  # events stored before the tamper-evident chain existed: chain them, once
    identity = Identity(registry, settings.password_min_length)
    tokens = AccessTokens(registry, clock)
    accounts = Accounts(registry, identity, tokens, secrets.ldap_bind_password)
    auth = Auth(settings, accounts, secrets.signing_key(), clock)
    general = General(registry)
    auth.domain_name = general.domain_name  # the token realm names the domain name once one is set
    sessions = SessionStore(registry.datastore, registry.dialect, settings.portal_idle_minutes * 60, clock)
    uploads = UploadSessions(store, registry, clock, settings.max_upload_sessions_per_user)
    read_side = ReadSide(registry, secrets.audit_signing_key(), settings.audit_checkpoint_every)
    return Services(settings, registry, store, uploads, accounts, auth, identity, tokens, secrets, read_side, sessions,
                    general, storage_setting, Management(identity, accounts), Webhooks(registry, secrets),
                    WebhookDelivery(registry, read_side, secrets, source=settings.public_url or "", clock=clock,
                                    history=settings.webhook_history))


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
            app.state.services.webhook_delivery.stop()
            app.state.services.read_side.stop()
            if follower is not None:
                follower.stop()
            app.state.recent_logs.detach()
            app.state.recent_logs.sinks.remove(shared_logs.offer)
            shared_logs.stop()
            app.state.services.registry.close()

    app = FastAPI(title="Dockyard", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
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
