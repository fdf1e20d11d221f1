"""`/api/v0/logs`: the access line of each request (method, path, status, bytes, duration, user,
client) read back per component, and followed live as Server-Sent Events; JSON log lines."""

from __future__ import annotations

import json
import logging

import anyio
import httpx
import pytest

from dockyard.api.log_format import ComponentFormatter
from dockyard.api.recent_logs import RecentLogs
from dockyard.api.v0.logs import _follow
from tests.inprocess.conftest import API, Dockyard

pytestmark = pytest.mark.anyio


async def test_a_push_reads_back_as_access_lines(dockyard: Dockyard, client: httpx.AsyncClient) -> None:
    org = await dockyard.org()
    await dockyard.push(client, f"{org}/app", "v1")
    r = await client.get(f"{API}/logs", params={"component": "api"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["component"] == "api"
    put = [line for line in body["lines"] if f"PUT /v2/{org}/app/manifests/v1 201 " in line]
    assert len(put) == 1, body["lines"][-5:]
    assert " api " in put[0] and "user=admin" in put[0] and "client=127.0.0.1" in put[0]
    assert [line for line in body["lines"] if f"POST /v2/{org}/app/blobs/uploads/ 201" in line]
    # A refused sign-in is an `auth` line, not an `api` one.
    async with dockyard.client(("admin", "wrong-password")) as wrong:
        assert (await wrong.get(f"{API}/accounts")).status_code == 401
    auth = (await client.get(f"{API}/logs", params={"component": "auth"})).json()["lines"]
    assert any("sign-in refused for 'admin'" in line and " auth " in line for line in auth)


async def test_follow_streams_as_server_sent_events(dockyard: Dockyard, client: httpx.AsyncClient) -> None:
    # httpx's ASGI transport hands the body over when the response ends: a short bounded follow.
    org = await dockyard.org()
    wanted = f"PUT /v2/{org}/app/manifests/live 201"
    received: list[str] = []

    async def follow() -> None:
        r = await client.get(f"{API}/logs", params={"component": "api", "follow": "true", "seconds": 2})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        received.extend(r.text.splitlines())

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(follow)
            await dockyard.push(dockyard.client(), f"{org}/app", "live")
    events = [line[len("data: "):] for line in received if line.startswith("data: ")]
    assert any(wanted in e for e in events), received[-10:]
    assert received.count("event: log") == len(events)


async def test_a_follower_gets_each_new_line_as_it_is_logged() -> None:
    recent = RecentLogs()
    recent.attach()
    try:
        log = logging.getLogger("dockyard.gc")
        log.info("before the follow")
        entries, last = recent.since("gc", 0)
        follower = _follow(_Connected(), recent, "gc", entries, last, seconds=60)  # type: ignore[arg-type]
        first = await follower.__anext__()
        assert first["event"] == "log" and "before the follow" in first["data"]
        log.info("while following")
        with anyio.fail_after(10):
            live = await follower.__anext__()
        assert "while following" in live["data"] and " gc " in live["data"] and int(live["id"]) > int(first["id"])
        await follower.aclose()
    finally:
        recent.detach()


class _Connected:
    async def is_disconnected(self) -> bool:
        return False


async def test_the_logs_are_for_global_admins(dockyard: Dockyard) -> None:
    alice = await dockyard.user(role="read-write")
    async with dockyard.client(alice) as as_alice:
        assert (await as_alice.get(f"{API}/logs")).status_code == 403
    async with dockyard.client(None) as anonymous:
        assert (await anonymous.get(f"{API}/logs")).status_code == 401
    async with dockyard.client() as admin:
        r = await admin.get(f"{API}/logs", params={"component": "nonsense"})
        assert r.status_code == 422


def test_json_lines_name_the_component_and_carry_the_request() -> None:
    record = logging.LogRecord("dockyard.api.access", logging.INFO, __file__, 1, "GET %s %d", ("/v2/", 200), None)
    record.http = {"method": "GET", "path": "/v2/", "status": 200}
    entry = json.loads(ComponentFormatter("json").format(record))
    assert entry["component"] == "api" and entry["message"] == "GET /v2/ 200" and entry["http"]["status"] == 200
    record = logging.LogRecord("dockyard.gc", logging.INFO, __file__, 1, "GC run", (), None)
    assert " gc " in ComponentFormatter("text").format(record)
