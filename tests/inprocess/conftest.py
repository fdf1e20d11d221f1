"""The in-process API tier (STYLE.md section 7): the app from its one composition root
(`create_app(settings)`, its lifespan run), driven through `httpx.ASGITransport` on an in-memory
SQLite database and the memory blob store. One fresh app per test; no port, no process.

Async tests (mark the module `pytestmark = pytest.mark.anyio`; anyio's pytest plugin runs them):

    pytestmark = pytest.mark.anyio

    async def test_a_user_pushes(dockyard, client, anon_client, clock) -> None:
        alice = await dockyard.user(role="none")            # (name, password), made by admin
        org = await dockyard.org(owner=alice)               # alice owns it (team `owners`)
        await dockyard.team(org, "core", members=[alice[0]], owner=alice)
        async with dockyard.client(alice) as as_alice:      # any credentials; None = anonymous
            digest = await dockyard.push(as_alice, f"{org}/app", "v1")
        assert (await client.get(f"/v2/{org}/app/manifests/v1")).status_code == 200   # admin
        clock.advance(3600)                                 # tokens expire; nothing sleeps

`client` is HTTP Basic as `admin`, `anon_client` sends no credentials, `app.state.services` is the
object graph (`dockyard.services`), `dockyard.events(n)` the last events of the log.

Synchronous tests moved from the real-server tier keep their bodies: the `server` and
`shared_server` fixtures here are `InProcessServer`s with the `DockyardServer` interface that
those tests use (`client(auth=...)`, `url`, `host`, `events(n)`), each a fresh app per test,
driven from the test's thread through a portal to the app's event loop.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from asgi_lifespan import LifespanManager
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST
from fastapi import FastAPI

from dockyard.api.app import create_app
from dockyard.api.settings import Settings
from dockyard.api.v2.common import Services
from dockyard.commands.persistence import MEMORY_DATABASE_URL
from tests.clock import Clock
from tests.conftest import ADMIN_PASSWORD

BASE_URL = "http://dockyard.test"
API = "/api/v0"
Auth = tuple[str, str] | None


def inprocess_settings(**overrides: Any) -> Settings:
    """Settings for an in-process app: a private in-memory database, memory blobs, no scheduler."""
    values: dict[str, Any] = dict(database_url=MEMORY_DATABASE_URL, storage="memory://",
                                  admin_password=ADMIN_PASSWORD, upload_purge_interval_hours=0)
    return Settings(**{**values, **overrides})


async def started(app: FastAPI) -> None:
    """What `dockyard serve` does before its workers start: create `admin` on a fresh database."""
    app.state.services.accounts.ensure_admin(ADMIN_PASSWORD)


def _auth(auth: Auth) -> Auth:
    return ("admin", ADMIN_PASSWORD) if auth == ("admin", "") else auth


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def event_lines(services: Services, n: int) -> list[dict[str, Any]]:
    """The last `n` events of the log, shaped as `dockyard events tail` prints them."""
    registry = services.registry
    last = registry.recorder.max_notification_id() or 0
    lines = []
    for note in registry.recorder.select_notifications(max(0, last - n), n, inclusive_of_start=False):
        event = registry.mapper.to_domain_event(note)
        state = {k: v for k, v in event.__dict__.items() if k != "payload"}
        lines.append({"position": note.id, "topic": note.topic,
                      **{k: v if isinstance(v, int | list | dict | None) else str(v) for k, v in state.items()}})
    return lines


def image_parts(tag: str) -> tuple[bytes, bytes, bytes]:
    """A one-layer OCI image: config, layer and manifest bytes (the layer is unique per call)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "tag": tag}).encode()
    layer = uuid.uuid4().bytes * 64
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": len(config),
                   "digest": "sha256:" + hashlib.sha256(config).hexdigest()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": len(layer),
                    "digest": "sha256:" + hashlib.sha256(layer).hexdigest()}],
    }).encode()
    return config, layer, manifest


# -- the async tier ------------------------------------------------------------------------------

class Dockyard:
    """One in-process app and helpers that act on it through its HTTP API, as a client would."""

    def __init__(self, app: FastAPI, clock: Clock) -> None:
        self.app = app
        self.clock = clock
        self._clients: list[httpx.AsyncClient] = []

    @property
    def services(self) -> Services:
        return self.app.state.services

    def client(self, auth: Auth = ("admin", "")) -> httpx.AsyncClient:
        """A client with HTTP Basic as admin (the default), as `auth`, or anonymous (None).
        Use it in `async with`, or leave it: the fixture closes it after the test."""
        c = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE_URL, auth=_auth(auth))
        self._clients.append(c)
        return c

    async def aclose(self) -> None:
        for c in self._clients:
            await c.aclose()

    async def user(self, role: str = "none", name: str | None = None) -> tuple[str, str]:
        """A new user made by admin through `/api/v0`; returns (name, password) for Basic auth."""
        name = name or unique("u")
        password = f"{name}-pw"
        r = await self.client().post(f"{API}/accounts", json={"type": "user", "name": name, "password": password,
                                                             "role": role})
        assert r.status_code == 201, r.text
        return name, password

    async def org(self, owner: Auth = ("admin", ""), name: str | None = None) -> str:
        """A new organisation created by `owner` (who lands in its `owners` team)."""
        name = name or unique("org")
        r = await self.client(owner).post(f"{API}/accounts", json={"type": "organization", "name": name})
        assert r.status_code == 201, r.text
        return name

    async def team(self, org: str, name: str | None = None, members: Sequence[str] = (),
                   owner: Auth = ("admin", "")) -> str:
        """A new team of `org` with `members`, made by `owner` (an owner of the org, or admin)."""
        name = name or unique("t")
        client = self.client(owner)
        r = await client.post(f"{API}/accounts/{org}/teams", json={"name": name})
        assert r.status_code == 201, r.text
        for member in members:
            r = await client.put(f"{API}/accounts/{org}/teams/{name}/members/{member}")
            assert r.status_code == 200, r.text
        return name

    async def grant(self, repository: str, team: str, level: str, owner: Auth = ("admin", "")) -> None:
        """Give `team` (of the repository's organisation) `level` on `repository`."""
        namespace, repo = repository.split("/", 1)
        r = await self.client(owner).put(f"{API}/repositories/{namespace}/{repo}/teamAccess/{team}",
                                         json={"accessLevel": level})
        assert r.status_code == 200, r.text

    async def push(self, client: httpx.AsyncClient, repository: str, tag: str) -> str:
        """Push a one-layer image over `/v2/` with the client's credentials; returns its digest."""
        config, layer, manifest = image_parts(tag)
        for data in (config, layer):
            r = await client.post(f"/v2/{repository}/blobs/uploads/",
                                  params={"digest": "sha256:" + hashlib.sha256(data).hexdigest()}, content=data,
                                  headers={"Content-Type": "application/octet-stream"})
            assert r.status_code == 201, r.text
        r = await client.put(f"/v2/{repository}/manifests/{tag}", content=manifest,
                             headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        assert r.status_code == 201, r.text
        return "sha256:" + hashlib.sha256(manifest).hexdigest()

    def events(self, n: int = 50) -> list[dict[str, Any]]:
        return event_lines(self.services, n)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id with its cheapest parameters: the real ones cost ~0.1 s of CPU per hash or
    check by design (seconds on a loaded machine), and every user made or signed in pays it.
    The hashing itself is still argon2id; the real parameters run in the real-server tier."""
    monkeypatch.setattr("dockyard.commands.accounts.PasswordHasher",
                        lambda **_: PasswordHasher.from_parameters(CHEAPEST))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings() -> Settings:
    """Override in a module to change a setting (e.g. `token_ttl_seconds`)."""
    return inprocess_settings()


@pytest.fixture
async def app(settings: Settings, clock: Clock) -> AsyncIterator[FastAPI]:
    """The app, its lifespan running (services built), `admin` created."""
    app = create_app(settings, clock=clock)
    async with LifespanManager(app):
        await started(app)
        yield app


@pytest.fixture
async def dockyard(app: FastAPI, clock: Clock) -> AsyncIterator[Dockyard]:
    d = Dockyard(app, clock)
    yield d
    await d.aclose()


@pytest.fixture
def client(dockyard: Dockyard) -> httpx.AsyncClient:
    """HTTP Basic as `admin`."""
    return dockyard.client()


@pytest.fixture
def anon_client(dockyard: Dockyard) -> httpx.AsyncClient:
    """No credentials."""
    return dockyard.client(None)


# -- the same app for synchronous tests (moved from the real-server tier) ------------------------

class _PortalTransport(httpx.BaseTransport):
    """A synchronous httpx transport that sends each request to the app on the portal's loop."""

    def __init__(self, portal: BlockingPortal, app: FastAPI) -> None:
        self._portal = portal
        self._asgi = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def send() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            forwarded = httpx.Request(request.method, request.url, headers=request.headers, content=body)
            response = await self._asgi.handle_async_request(forwarded)
            return response.status_code, response.headers.raw, await response.aread()

        status, headers, content = self._portal.call(send)
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(content), request=request)


async def _lifespan_manager(app: FastAPI) -> LifespanManager:
    return LifespanManager(app)  # made on the loop that runs it: it looks the loop up when made


class InProcessServer:
    """The `DockyardServer` interface the API tests use, over one in-process app."""

    backend = "sqlite"
    database_url = None
    admin_password = ADMIN_PASSWORD
    url = BASE_URL
    host = BASE_URL.removeprefix("http://")

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.app = create_app(settings, clock=clock)
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._lifespan_cm: AbstractContextManager[Any] | None = None

    @property
    def services(self) -> Services:
        return self.app.state.services

    def start(self) -> None:
        self._portal_cm = start_blocking_portal("asyncio")
        portal = self._portal_cm.__enter__()
        self._lifespan_cm = portal.wrap_async_context_manager(portal.call(_lifespan_manager, self.app))
        self._lifespan_cm.__enter__()
        portal.call(started, self.app)
        self.portal = portal

    def stop(self) -> None:
        if self._lifespan_cm is not None:
            self._lifespan_cm.__exit__(None, None, None)
        if self._portal_cm is not None:
            self._portal_cm.__exit__(None, None, None)
        self._lifespan_cm = self._portal_cm = None

    def client(self, auth: Auth = ("admin", "")) -> httpx.Client:
        """An httpx client with HTTP Basic as admin (the default) or the given user, or none."""
        return httpx.Client(transport=_PortalTransport(self.portal, self.app), base_url=self.url, auth=_auth(auth))

    def events(self, n: int = 50) -> list[dict[str, Any]]:
        return event_lines(self.services, n)


def _inprocess_server(settings: Settings, clock: Clock) -> Iterator[InProcessServer]:
    srv = InProcessServer(settings, clock)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def server(settings: Settings, clock: Clock) -> Iterator[InProcessServer]:
    """A fresh in-process app for one synchronous test."""
    yield from _inprocess_server(settings, clock)


@pytest.fixture
def shared_server(settings: Settings, clock: Clock) -> Iterator[InProcessServer]:
    """As `server`: a fresh app costs milliseconds here, so tests never share one."""
    yield from _inprocess_server(settings, clock)

