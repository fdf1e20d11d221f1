"""Helpers for the auth tests of the in-process tier (synchronous `InProcessServer`s)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ADMIN_PASSWORD
from tests.inprocess.conftest import Clock, InProcessServer, inprocess_settings

ADMIN = ("admin", ADMIN_PASSWORD)


@contextmanager
def process(data_dir: Path, clock: Clock | None = None) -> Iterator[InProcessServer]:
    """One Dockyard process on the SQLite database under `data_dir`: two of them on one dir are
    two processes on one log; one after another, a restart."""
    srv = InProcessServer(inprocess_settings(database_url=None, data_dir=str(data_dir)), clock or Clock())
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def ok(response: httpx.Response, *statuses: int) -> httpx.Response:
    assert response.status_code in (statuses or (200, 201, 204)), (response.status_code, response.text)
    return response


def create_user(server: InProcessServer, name: str, password: str, role: str = "none") -> None:
    with server.client() as admin:
        ok(admin.post("/api/v0/accounts", json={"type": "user", "name": name, "password": password, "role": role}))


def events(server: InProcessServer, topic_prefix: str) -> list[Any]:
    """The domain events of the server's log whose topic starts with `topic_prefix`."""
    registry = server.services.registry
    return [registry.mapper.to_domain_event(n)
            for n in registry.recorder.select_notifications(start=1, limit=1_000_000)
            if n.topic.startswith(topic_prefix)]
