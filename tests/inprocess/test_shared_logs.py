"""`api.shared_logs`: every replica's recent lines gathered in the database, read merged and tagged
with the replica that logged them; a bounded ring per replica and component; a database that is
away drops lines with a counter, and never fails the code that logged them.

A second replica is a second `SharedLogs` on the same database (what another process holds); the
e2e tier (tests/e2e/test_replicas.py) runs two real server processes on one PostgreSQL."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI

from dockyard.api.recent_logs import RecentLogs
from dockyard.api.shared_logs import SharedLogs
from dockyard.api.v0.logs import _follow
from tests.conftest import ADMIN_PASSWORD
from tests.inprocess.conftest import API, BASE_URL, unique

pytestmark = pytest.mark.anyio


def _other_replica(app: FastAPI, **options: Any) -> SharedLogs:
    registry = app.state.services.registry
    return SharedLogs(registry.datastore, registry.dialect, **options)


async def test_another_replicas_lines_read_back_tagged(app: FastAPI, client: httpx.AsyncClient) -> None:
    marker = unique("/v2/elsewhere/")
    other = _other_replica(app)
    other.offer("replica-b", "api", time.time(), f"2026-12-03 10:00:00,000 INFO    api         replica-b GET {marker}")
    assert other.flush() == 1
    assert (await client.get(f"{API}/logs", params={"component": "auth"})).status_code == 200
    lines = (await client.get(f"{API}/logs", params={"component": "api"})).json()["lines"]
    theirs = [line for line in lines if marker in line]
    assert len(theirs) == 1 and " replica-b " in theirs[0]
    # This process's own lines are there too, tagged with its own name (hostname:pid here).
    mine = app.state.recent_logs.replica
    assert any(f" {mine} GET /api/v0/logs" in line for line in lines), lines[-5:]
    assert not [line for line in (await client.get(f"{API}/logs", params={"component": "gc"})).json()["lines"]
                if marker in line]


async def test_the_portal_shows_every_replicas_lines(app: FastAPI) -> None:
    other = _other_replica(app)
    other.offer("replica-b", "gc", time.time(), "a line from replica-b")
    other.flush()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as page:
        form = (await page.get("/login")).text
        token = re.search(r'name="csrf_token" value="([^"]*)"', form).group(1)  # type: ignore[union-attr]
        signed = await page.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD,
                                                 "csrf_token": token})
        assert signed.status_code == 303, signed.text
        body = (await page.get("/logs/lines", params={"component": "gc"})).json()
        assert "a line from replica-b" in body["lines"]
        assert "a line from replica-b" in (await page.get("/logs", params={"component": "gc"})).text


async def test_a_follow_sees_another_replicas_line_as_it_is_written(app: FastAPI) -> None:
    shared: SharedLogs = app.state.shared_logs
    entries, last = shared.since("gc", 0)
    follower = _follow(_Connected(), shared, "gc", entries, last, seconds=60)  # type: ignore[arg-type]
    other = _other_replica(app)
    other.offer("replica-b", "gc", time.time(), "swept on replica-b")
    other.flush()
    with anyio.fail_after(30):
        async for event in follower:
            if "swept on replica-b" in event["data"]:
                break
    await follower.aclose()


async def test_each_replica_keeps_a_bounded_ring_per_component(app: FastAPI) -> None:
    mine, other = _other_replica(app, keep=5), _other_replica(app, keep=5)
    now = time.time()
    for i in range(40):
        mine.offer("replica-a", "api", now + i, f"a{i}")
        if i % 7 == 0:
            mine.flush()
    mine.offer("replica-a", "gc", now, "a-gc")
    other.offer("replica-b", "api", now, "b0")
    other.offer("replica-c", "api", now - 2 * 86_400, "c0")  # a process gone two days ago: its lines expire
    other.flush()
    mine.flush()
    lines = mine.lines("api", 1000)
    assert [line for line in lines if line.startswith("a")] == [f"a{i}" for i in range(35, 40)]
    assert "b0" in lines and "c0" not in lines and mine.lines("gc", 1000).count("a-gc") == 1


async def test_lines_are_merged_in_time_order(app: FastAPI) -> None:
    a, b = _other_replica(app), _other_replica(app)
    now = time.time()
    for at in (1.0, 3.0, 5.0):
        a.offer("replica-a", "storage", now + at, f"a@{at}")
    for at in (2.0, 4.0):
        b.offer("replica-b", "storage", now + at, f"b@{at}")
    a.flush()
    b.flush()
    assert a.lines("storage") == ["a@1.0", "b@2.0", "a@3.0", "b@4.0", "a@5.0"]


class _Away:
    """A datastore whose database is gone: every transaction fails, after the table exists."""

    def __init__(self) -> None:
        self.away = False

    @contextmanager
    def transaction(self, commit: bool = False) -> Iterator[Any]:
        if self.away:
            raise ConnectionError("the database is away")
        yield _NullCursor()


class _NullCursor:
    def execute(self, *args: Any) -> None:
        pass


def test_a_database_away_drops_lines_with_a_counter_and_logging_goes_on() -> None:
    from dockyard.projections.dialect import SQLITE

    datastore, counted = _Away(), []
    shared = SharedLogs(datastore, SQLITE, buffer=3, on_drop=counted.append)
    datastore.away = True
    recent = RecentLogs(replica="replica-a")
    recent.sinks.append(shared.offer)
    recent.attach()
    try:
        log = logging.getLogger("dockyard.storage")
        for i in range(5):
            log.info("line %d", i)  # never raises, never waits: the buffer takes 3, drops 2
    finally:
        recent.detach()
    assert shared.dropped == 2 and sum(counted) == 2
    assert shared.flush() == 0 and shared.dropped == 5 and sum(counted) == 5  # the write failed: dropped
    assert any("replica-a line 4" in line for line in recent.lines("storage"))  # this process still has them


async def test_with_the_database_away_a_read_answers_this_processs_lines(app: FastAPI,
                                                                        client: httpx.AsyncClient,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def away(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("the database is away")

    monkeypatch.setattr(app.state.shared_logs, "since", away)
    await client.get("/v2/")
    lines = (await client.get(f"{API}/logs", params={"component": "api"})).json()["lines"]
    assert any("GET /v2/ " in line for line in lines)


class _Connected:
    async def is_disconnected(self) -> bool:
        return False
