"""`create_app(settings)`: the one place that builds the object graph (as cosmicpython's bootstrap).

Nothing is constructed at import time. `factory()` is what `uvicorn --factory` calls in each
worker process: it reads the settings from `DOCKYARD_*` variables.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.api import errors, portal, v0, v2
from dockyard.api.auth import Auth
from dockyard.api.auth import routes as auth_routes
from dockyard.api.portal.sessions import SessionStore
from dockyard.api.recent_logs import RecentLogs
from dockyard.api.secret_store import SecretStore
from dockyard.api.settings import Settings
from dockyard.api.v2.common import Services
from dockyard.commands.access_tokens import AccessTokens
from dockyard.commands.accounts import Accounts
from dockyard.commands.audit_chain import start_chain
from dockyard.commands.general_settings import General
from dockyard.commands.storage_settings import StorageSetting
from dockyard.commands.identity import Identity
from dockyard.commands.management import Management
from dockyard.commands.persistence import event_store_env
from dockyard.commands.registry import Registry
from dockyard.commands.uploads import UploadSessions
from dockyard.gc import schedule as housekeeping
from dockyard.projections.read_side import ReadSide
from dockyard.storage import open_store
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
    sessions = SessionStore(registry.recorder.datastore, registry.dialect, settings.portal_idle_minutes * 60, clock)
    return Services(settings, registry, store, UploadSessions(store, registry, clock), accounts, auth,
                    identity, tokens, secrets,
                    ReadSide(registry, secrets.audit_signing_key(), settings.audit_checkpoint_every), sessions,
                    General(registry), storage_setting, Management(identity, accounts))


async def _health(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


def create_app(settings: Settings, *, clock: Callable[[], float] = time.time) -> FastAPI:
    """The app; its lifespan builds the services (`app.state.services`) and the housekeeping.
    Tests pass `clock` to move time instead of waiting (tests/inprocess/conftest.py)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = build_services(settings, clock)
        app.state.services.read_side.start()  # followed projections: one leader across processes
        app.state.recent_logs.attach()
        scheduler = housekeeping.start(app.state.services.uploads,
                                       purge_age_hours=settings.upload_purge_age_hours,
                                       purge_interval_hours=settings.upload_purge_interval_hours)
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            app.state.services.read_side.stop()
            app.state.recent_logs.detach()
            app.state.services.registry.close()

    app = FastAPI(title="Dockyard", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="A trusted on-premises container image registry on an event log.")
    errors.install(app)
    v0.install(app, settings.password_min_length)  # the management API, and its console at /docs from local assets (no CDN)
    # The /v2/ hot paths are plain Starlette routes: FastAPI's validation adds ~35 µs each.
    app.router.routes.extend(v2.routes())
    app.router.routes.extend(auth_routes.routes())  # /auth/token
    app.router.routes.append(Route("/healthz", _health, methods=["GET"]))
    app.state.recent_logs = RecentLogs()
    portal.install(app)  # the web portal at `/`, after every API route
    return app


def factory() -> FastAPI:
    return create_app(Settings())
