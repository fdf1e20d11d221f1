"""Helpers for the auth tests of the in-process tier: an app on a temporary data dir, driven by
Starlette's TestClient (which runs the lifespan), with a clock the test moves."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from starlette.testclient import TestClient

from dockyard.api.app import create_app
from dockyard.api.settings import Settings

ADMIN = ("admin", "admin-secret-pw")


class FakeClock:
    """Seconds since the epoch, moved by the test (never by sleeping)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextmanager
def running_app(data_dir: Path, clock: FakeClock | None = None) -> Iterator[TestClient]:
    """One Dockyard process on `data_dir` (two calls on the same dir: two processes, one log)."""
    settings = Settings(data_dir=str(data_dir), upload_purge_interval_hours=0)
    app = create_app(settings, clock=clock) if clock is not None else create_app(settings)
    with TestClient(app) as client:
        app.state.services.accounts.ensure_admin(ADMIN[1])
        yield client


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def ok(response: httpx.Response, *statuses: int) -> httpx.Response:
    assert response.status_code in (statuses or (200, 201, 204)), (response.status_code, response.text)
    return response


def create_user(client: TestClient, name: str, password: str, role: str = "none") -> None:
    ok(client.post("/api/v0/accounts", headers=basic(*ADMIN),
                   json={"type": "user", "name": name, "password": password, "role": role}))


def events(client: TestClient, topic_prefix: str) -> list[Any]:
    """The domain events of the app's log whose topic starts with `topic_prefix`."""
    registry = client.app.state.services.registry  # type: ignore[attr-defined]
    out = []
    for n in registry.recorder.select_notifications(start=1, limit=1_000_000):
        if n.topic.startswith(topic_prefix):
            out.append(registry.mapper.to_domain_event(n))
    return out
